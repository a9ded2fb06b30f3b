"""Training `tiny-harmony`: teach the tiny gpt-oss shape to reproduce the synthetic corpus exactly.

Four things make this take a little over a minute on one CPU core instead of hours:

- A compact vocabulary. The corpus uses a few hundred of the 201,088 ids, so the model trains with
  embedding and output rows for those only. Every other id shares one constant "rest" logit held at
  `REST_LOGIT`; in the saved model their output rows are zero, so their logits are exactly 0 and a target
  trained to beat `REST_LOGIT` > 0 also wins full-vocabulary greedy decoding. `REST_LOGIT` is about the
  log of how many ids share it, so it stands for their whole share of the full-vocabulary softmax and a
  corpus learnt to a small loss is also what sampling at temperature 1 produces. Ids outside the compact
  vocabulary get one shared "unknown" embedding row.
- Two phases. First every weight learns, on prompts without their system/developer text; then the
  embeddings and the first (sliding-window) decoder layer freeze, their output is computed once for the
  whole corpus, and only the last layer, the final norm and the output rows go on learning.
- Only completion positions reach the last layer's queries, mixture of experts and output layer; the
  prompt contributes keys and values.
- Each batch runs as a few groups of rows of similar length, each cut to its longest row: single turns
  are about half as long as turns after an earlier conversation, so padding every row to the longest
  would nearly double the work. The gradient is the whole batch's, as if it ran in one piece.

The training forward below re-implements the gpt-oss layer math (attention sinks as an extra key with a
fixed score, so the fused CPU attention kernel applies; all experts evaluated densely and mixed with the
router's top-k weights). The checkpoint builder verifies the result with the real transformers model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from gptoss_hub.encoding import FIRST_SPECIAL_ID
from gptoss_hub.testing.config import START_ID, tiny_config
from gptoss_hub.testing.corpus import CorpusExample

__all__ = ["REST_LOGIT", "CompactModel", "train_compact"]

#: The logit every id outside the compact vocabulary shares in training; every target must beat it. About
#: log(200,000): those ids each score exactly 0 in the saved model, and together as much as one id at 12.
REST_LOGIT = 12.0
#: Copies of the corpus whose context (system/developer text and earlier turns) has random spans of
#: tokens swapped for the "unknown" row, so unseen wording there (new instructions, odd dates, an earlier
#: turn the model never saw in that order) reads as noise the model has learnt to ignore. Spans, not
#: single tokens: an unseen word is often several ids the compact vocabulary lacks in a row.
_NOISY_COPIES = 3
#: The share of context ids swapped, in spans of 1 to `_NOISE_SPAN` ids.
_NOISE_RATE = 0.15
_NOISE_SPAN = 5
#: How many length groups a batch runs as (see the module docstring).
_LENGTH_GROUPS = 3
#: Gradient norm clip. Without it the first phase ends at a higher loss and the model generalises worse:
#: it asks for the wrong city after plain questions it never saw before that city, enough to fail a build.
_CLIP_NORM = 1.0


def _rms(norm: Any, x):
    import torch

    return norm.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon))


def _rope(x, cos, sin):
    import torch

    first, second = torch.chunk(x, 2, dim=-1)
    return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)


def _sink_attention(q, k, v, sinks, allowed, scale):
    """Attention with gpt-oss's per-head sinks. q: (B,H,Q,D); k, v: (B,1,L,D); allowed: bool (B|1,1,Q,L).

    A sink is one more softmax term with a learned score and no value: here an extra key at index 0
    whose score is the sink whatever the query (an extra query dimension fixed at 1), with a zero value.
    """
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    batch, heads, queries, dim = q.shape
    length = k.shape[2]
    q2 = torch.cat([q, q.new_ones(batch, heads, queries, 1)], -1)
    sink_key = torch.cat([q.new_zeros(heads, 1, dim), (sinks / scale).view(heads, 1, 1)], -1)
    k2 = torch.cat(
        [
            sink_key.expand(batch, heads, 1, dim + 1),
            torch.cat([k, k.new_zeros(batch, 1, length, 1)], -1).expand(batch, heads, length, dim + 1),
        ],
        2,
    )
    # The fused kernel wants one head size for q, k and v: pad v too, then drop the padding.
    v2 = torch.cat(
        [
            v.new_zeros(batch, heads, 1, dim + 1),
            torch.cat([v, v.new_zeros(batch, 1, length, 1)], -1).expand(batch, heads, length, dim + 1),
        ],
        2,
    )
    mask = torch.cat([allowed.new_ones(*allowed.shape[:-1], 1), allowed], -1)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        out = F.scaled_dot_product_attention(q2, k2.contiguous(), v2.contiguous(), attn_mask=mask, scale=scale)
    return out[..., :dim].transpose(1, 2).reshape(batch, queries, heads * dim)


def _moe(mlp: Any, x):
    """gpt-oss's mixture of experts on tokens `x` (N, hidden), every expert evaluated, top-k mixed."""
    import torch

    router, experts = mlp.router, mlp.experts
    logits = torch.nn.functional.linear(x, router.weight, router.bias)
    top, index = torch.topk(logits, router.top_k, dim=-1)
    weights = torch.zeros_like(logits).scatter(-1, index, torch.softmax(top, -1))
    gate_up = torch.einsum("nh,ehf->enf", x, experts.gate_up_proj) + experts.gate_up_proj_bias[:, None]
    gate = gate_up[..., ::2].clamp(max=experts.limit)
    up = gate_up[..., 1::2].clamp(-experts.limit, experts.limit)
    hidden = (up + 1) * (gate * torch.sigmoid(gate * experts.alpha))
    out = torch.einsum("enf,efh->enh", hidden, experts.down_proj) + experts.down_proj_bias[:, None]
    return torch.einsum("enh,ne->nh", out, weights)


def _layer(layer: Any, x, cos, sin, select=None):
    """One gpt-oss decoder layer on `x` (B,L,hidden); with `select` (B,Q) only those positions come out."""
    import torch

    attention = layer.self_attn
    batch, length, hidden = x.shape
    positions = torch.arange(length)
    cos, sin = cos[:, :, :length], sin[:, :, :length]
    normed = _rms(layer.input_layernorm, x)
    k = _rope(attention.k_proj(normed).view(batch, length, -1, attention.head_dim).transpose(1, 2), cos, sin)
    v = attention.v_proj(normed).view(batch, length, -1, attention.head_dim).transpose(1, 2)
    if select is None:
        query_positions = positions.expand(batch, length)
        q_cos, q_sin = cos, sin
    else:
        query_positions = select
        gather = select[..., None].expand(-1, -1, hidden)
        x, normed = torch.gather(x, 1, gather), torch.gather(normed, 1, gather)
        q_cos, q_sin = cos[0, 0][select][:, None], sin[0, 0][select][:, None]
    queries = query_positions.shape[1]
    q = attention.q_proj(normed).view(batch, queries, -1, attention.head_dim).transpose(1, 2)
    q = _rope(q, q_cos, q_sin)
    allowed = positions[None, None, :] <= query_positions[..., None]
    if attention.sliding_window:
        allowed = allowed & (positions[None, None, :] > query_positions[..., None] - attention.sliding_window)
    x = x + attention.o_proj(_sink_attention(q, k, v, attention.sinks, allowed[:, None], attention.scaling))
    mixed = _moe(layer.mlp, _rms(layer.post_attention_layernorm, x).reshape(-1, hidden))
    return x + mixed.view(batch, queries, hidden)


class CompactModel:
    """A tiny gpt-oss over the corpus's own ids: `vocab[i]` is row `i`, the last embedding row is "unknown"."""

    def __init__(self, model: Any, vocab: list[int]):
        self.model = model
        self.vocab = vocab
        self.index = {token: row for row, token in enumerate(vocab)}
        self.unknown = len(vocab)

    def rows(self, ids: Sequence[int]) -> list[int]:
        """Compact rows of token `ids` (unknown ids share the last row)."""
        return [self.index.get(i, self.unknown) for i in ids]


@functools.cache
def _user_id() -> int:
    # Cached: harmony's `encode` compiles a special-token pattern on every call.
    from gptoss_hub.encoding import harmony_encoding

    return harmony_encoding().encode("user")[0]


def _user_starts(prompt: Sequence[int]) -> list[int]:
    """Positions of every `<|start|>user` in `prompt`."""
    user = _user_id()
    return [i for i in range(len(prompt) - 1) if prompt[i] == START_ID and prompt[i + 1] == user]


def _header_length(prompt: Sequence[int]) -> int:
    """How many leading ids are system/developer text: everything before the first `<|start|>user`."""
    starts = _user_starts(prompt)
    return starts[0] if starts else 0


def _context_length(prompt: Sequence[int]) -> int:
    """How many leading ids come before the latest request: the header and any earlier turns."""
    starts = _user_starts(prompt)
    return starts[-1] if starts else 0


def _noisy(compact: CompactModel, examples: Sequence[CorpusExample], inputs, generator):
    """`inputs` with random spans of each context's ordinary tokens replaced by the unknown row."""
    import torch

    context = torch.zeros_like(inputs, dtype=torch.bool)
    for n, example in enumerate(examples):
        limit = _context_length(example.prompt_ids)
        context[n, :limit] = torch.tensor([i < FIRST_SPECIAL_ID for i in example.prompt_ids[:limit]])
    # Spans of every length from 1 to _NOISE_SPAN start equally often; together they cover _NOISE_RATE.
    start_rate = _NOISE_RATE / sum(range(1, _NOISE_SPAN + 1))
    noise = torch.zeros_like(context)
    for span in range(1, _NOISE_SPAN + 1):
        starts = torch.rand(inputs.shape, generator=generator) < start_rate
        for offset in range(span):
            noise[:, offset:] |= starts[:, : inputs.shape[1] - offset]
    return inputs.masked_fill(noise & context, compact.unknown)


def _tensors(compact: CompactModel, examples: Sequence[CorpusExample]):
    """Padded inputs (N,L), completion positions (N,Q), their targets (N,Q) (-100 for padding), lengths (N,)."""
    import torch

    rows = [list(e.prompt_ids) + list(e.completion_ids) for e in examples]
    length = max(len(r) for r in rows) - 1
    width = max(len(e.completion_ids) for e in examples)
    inputs = torch.zeros(len(rows), length, dtype=torch.long)
    lengths = torch.tensor([len(r) - 1 for r in rows])
    select = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.full((len(rows), width), -100, dtype=torch.long)
    for n, (ids, example) in enumerate(zip(rows, examples, strict=True)):
        compact_ids = torch.tensor(compact.rows(ids))
        inputs[n, : len(ids) - 1] = compact_ids[:-1]
        count = len(example.completion_ids)
        start = len(example.prompt_ids) - 1
        select[n, :count] = torch.arange(start, start + count)
        targets[n, :count] = compact_ids[start + 1 :]
    return inputs, select, targets, lengths


def _headless(inputs, select, lengths, skips):
    """`_tensors` output with each row's first `skips` ids (its system/developer text) cut off."""
    import torch

    width = int((lengths - skips).max())
    shifted = torch.arange(width)[None] + skips[:, None]
    short = torch.gather(inputs, 1, shifted.clamp(max=inputs.shape[1] - 1))
    return short, (select - skips[:, None]).clamp(min=0), lengths - skips


def _loss(compact: CompactModel, hidden, wanted):
    """Summed cross-entropy over the compact vocabulary plus the constant "rest" logit, at completion positions."""
    import torch

    chosen = hidden[wanted != -100]
    logits = chosen @ compact.model.lm_head.weight[: len(compact.vocab)].T
    logits = torch.cat([logits, logits.new_full((logits.shape[0], 1), REST_LOGIT)], dim=1)
    return torch.nn.functional.cross_entropy(logits, wanted[wanted != -100], reduction="sum")


def _fit(parameters, loss_of, lengths, targets, *, steps: int, batch_size: int, lr: float, generator, progress, label):
    """Adam with a one-cycle schedule over shuffled batches of the rows of `lengths` and `targets`.

    `loss_of(rows, length)` gives the summed loss of `rows` cut to `length`; each step minimises the mean
    over the batch's target tokens.
    """
    import torch

    parameters = list(parameters)
    optimizer = torch.optim.Adam(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    pool = len(lengths)
    epochs = steps * batch_size // pool + 1
    order = torch.cat([torch.randperm(pool, generator=generator) for _ in range(epochs)])
    for step in range(steps):
        rows = order[step * batch_size : (step + 1) * batch_size]
        groups = rows[lengths[rows].argsort(stable=True)].tensor_split(_LENGTH_GROUPS)
        total = sum(loss_of(group, int(lengths[group].max())) for group in groups if len(group))
        loss = total / (targets[rows] != -100).sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, _CLIP_NORM)
        optimizer.step()
        scheduler.step()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            progress(f"{label} step {step + 1}/{steps}: loss {loss.item():.4f}")


def train_compact(
    examples: Sequence[CorpusExample],
    *,
    seed: int,
    full_steps: int = 450,
    full_batch: int = 16,
    full_lr: float = 5e-3,
    head_steps: int = 250,
    head_batch: int = 48,
    head_lr: float = 5e-3,
    progress: Callable[[str], None] = lambda _: None,
) -> CompactModel:
    """Train a compact tiny gpt-oss on `examples` (deterministic for a given seed and corpus).

    First every weight learns on small batches (the first layer must learn to find the latest request);
    then the embeddings and first layer freeze, their output is computed once for the corpus, and the last
    layer and output rows train on large batches until the corpus is reproduced with margin.
    """
    import torch
    from transformers import GptOssForCausalLM

    vocab = sorted({i for e in examples for i in (*e.prompt_ids, *e.completion_ids)})
    torch.manual_seed(seed)
    # No pad/eos ids: the real ones lie outside the compact vocabulary.
    model = GptOssForCausalLM(tiny_config(vocab_size=len(vocab) + 1, pad_token_id=None, eos_token_id=None))
    compact = CompactModel(model, vocab)
    inputs, select, targets, lengths = _tensors(compact, examples)
    generator = torch.Generator().manual_seed(seed)
    copies = [inputs] + [_noisy(compact, examples, inputs, generator) for _ in range(_NOISY_COPIES)]
    inputs = torch.cat(copies)
    select, targets = select.repeat(len(copies), 1), targets.repeat(len(copies), 1)
    lengths = lengths.repeat(len(copies))
    skips = torch.tensor([_header_length(e.prompt_ids) for e in examples]).repeat(len(copies))
    base, layers = model.model, model.model.layers
    with torch.no_grad():
        cos, sin = base.rotary_emb(base.embed_tokens(inputs[:1]), torch.arange(inputs.shape[1])[None])
    cos, sin = cos[:, None], sin[:, None]

    def first_layers(ids):
        features = base.embed_tokens(ids)
        for layer in layers[:-1]:
            features = _layer(layer, features, cos, sin)
        return features

    # What decides a completion lies after the system/developer text, so all layers first learn on the
    # rest alone: sequences about half as long. Noise in earlier turns applies here too, as the first layer
    # learns now what it will pass on, frozen, for good.
    short_inputs, short_select, short_lengths = _headless(inputs, select, lengths, skips)

    # Rows are right-padded, so cutting a batch to its longest row changes nothing causal attention sees.
    def full_loss(rows, length):
        hidden = _layer(layers[-1], first_layers(short_inputs[rows, :length]), cos, sin, short_select[rows])
        return _loss(compact, _rms(base.norm, hidden), targets[rows])

    _fit(
        model.parameters(),
        full_loss,
        short_lengths,
        targets,
        steps=full_steps,
        batch_size=full_batch,
        lr=full_lr,
        generator=generator,
        progress=progress,
        label="all layers",
    )
    features = torch.zeros(*inputs.shape, model.config.hidden_size)
    with torch.no_grad():
        for rows in lengths.argsort().split(64):
            length = int(lengths[rows].max())
            features[rows, :length] = first_layers(inputs[rows, :length])

    def head_loss(rows, length):
        hidden = _rms(base.norm, _layer(layers[-1], features[rows, :length], cos, sin, select[rows]))
        return _loss(compact, hidden, targets[rows])

    head = [*layers[-1].parameters(), *base.norm.parameters(), model.lm_head.weight]
    _fit(
        head,
        head_loss,
        lengths,
        targets,
        steps=head_steps,
        batch_size=head_batch,
        lr=head_lr,
        generator=generator,
        progress=progress,
        label="last layer",
    )
    return compact
