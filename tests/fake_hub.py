"""A Hugging Face Hub on a loopback port: the few routes `huggingface_hub` uses to list a repo and download
its files (repo info, the file tree, `resolve` with HEAD and ranged GET), served from files on this disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from loopback import QuietHandler, serving

#: The commit every fake repo is at.
COMMIT = "1" * 40


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Repos by id, each a mapping of file name (as in the repo) to a file on this disk; `requests` records
    the paths asked for (downloads included)."""

    def __init__(self, repos: dict[str, dict[str, Path]]):
        self.repos = repos
        self.requests: list[str] = []

    def handler(self) -> type[QuietHandler]:
        hub = self

        class Handler(QuietHandler):
            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, *, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
                for repo_id, files in hub.repos.items():
                    api = f"/api/models/{repo_id}/"
                    if path.startswith(api + "revision/"):
                        siblings = [{"rfilename": name} for name in files]
                        return self._json({"id": repo_id, "modelId": repo_id, "sha": COMMIT, "siblings": siblings})
                    if path.startswith(api + "tree/"):
                        tree = [
                            {"type": "file", "path": name, "size": source.stat().st_size, "oid": self._oid(source)}
                            for name, source in files.items()
                        ]
                        return self._json(tree)
                    resolve = f"/{repo_id}/resolve/"
                    if path.startswith(resolve):
                        name = path[len(resolve) :].split("/", 1)[1]
                        if name in files:
                            return self._file(files[name], head=head)
                        return self.reply(404, headers=[("X-Error-Code", "EntryNotFound")])
                self.reply(404, b'{"error": "Repository not found"}', headers=[("X-Error-Code", "RepoNotFound")])

            def _oid(self, source: Path) -> str:
                return _git_blob_id(source.read_bytes())

            def _json(self, value: object) -> None:
                self.reply(200, json.dumps(value).encode())

            def _file(self, source: Path, *, head: bool) -> None:
                data = source.read_bytes()
                start = 0
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-", 1)[0] or 0)
                body = data[start:]
                headers = [
                    ("X-Repo-Commit", COMMIT),
                    ("ETag", f'"{_git_blob_id(data)}"'),
                    ("Content-Length", str(len(body))),
                ]
                if start:
                    headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
                with contextlib.suppress(OSError):
                    self.send_response(206 if start else 200)
                    self.send_header("Content-Type", "application/octet-stream")
                    for key, value in headers:
                        self.send_header(key, value)
                    self.end_headers()
                    if not head:
                        self.wfile.write(body)

        return Handler


@contextlib.contextmanager
def fake_hub(repos: dict[str, dict[str, Path]]) -> Iterator[tuple[FakeHub, str]]:
    """A `FakeHub` of `repos` served for the length of the block; yields it and its endpoint URL."""
    hub = FakeHub(repos)
    with serving(hub.handler()) as port:
        yield hub, f"http://127.0.0.1:{port}"
