// The gptoss-hub chat page: it talks to this server's Responses API (POST /v1/responses, streamed) and
// keeps the conversation on the server through previous_response_id. No framework, no network beyond this
// server: the page works offline.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KEY_STORAGE = "gptoss-hub-api-key";  // sessionStorage: the key lives as long as this tab
const MAX_TOOL_ROUNDS = 8;

const state = { model: null, previous: null, controller: null, stopped: false };

// -- the demo tool, run by the page itself: the same answers as gptoss_hub.demo_tools.get_weather ---------

const WEATHER_TOOL = {
  type: "function",
  name: "get_weather",
  description: "Get the current weather for a location.",
  parameters: {
    type: "object",
    properties: { location: { type: "string", description: "The city to get the weather for, e.g. \"Tokyo\"." } },
    required: ["location"],
  },
};
const CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy"];

async function getWeather(location) {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(location.trim().toLowerCase())));
  const result = { location, temperature_c: (digest[0] % 35) - 5, conditions: CONDITIONS[digest[1] % CONDITIONS.length] };
  // Spelled as Python's json.dumps spells it, which is what the model saw in training.
  return "{" + Object.entries(result).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(", ") + "}";
}

async function runFunction(name, argumentsText) {
  if (name !== "get_weather") return JSON.stringify({ error: `no tool named ${name} on this page` });
  try {
    const args = JSON.parse(argumentsText || "{}");
    if (typeof args.location !== "string") throw new Error("location must be a string");
    return await getWeather(args.location);
  } catch (error) {
    return JSON.stringify({ error: `invalid arguments: ${error.message}` });
  }
}

// -- talking to the server ---------------------------------------------------------------------------------

function headers() {
  const result = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : `the server answered ${response.status}`;
  } catch (_) {
    return `the server answered ${response.status} ${response.statusText}`;
  }
}

async function connect() {
  const response = await fetch("v1/models", { headers: headers() });
  if (response.status === 401) {
    $("#model").textContent = "needs an API key";
    $("#key-form").hidden = false;
    if (sessionStorage.getItem(KEY_STORAGE)) showError(await errorMessage(response));
    return;
  }
  if (!response.ok) { showError(await errorMessage(response)); return; }
  $("#key-form").hidden = true;
  state.model = (await response.json()).data[0].id;
  $("#model").textContent = state.model;
}

// Server-sent events from a fetch body: yields [event, data] for each complete "event:/data:" block.
async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) yield [event, JSON.parse(data)];
    }
  }
}

// -- drawing a turn ------------------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function newTurn() {
  const turn = element("div", "turn");
  $("#log").appendChild(turn);
  return turn;
}

function scrollDown() { $("#log").scrollTop = $("#log").scrollHeight; }

function showError(message) {
  newTurn().appendChild(element("div", "error", message));
  scrollDown();
}

class TurnView {
  constructor(turn) { this.turn = turn; this.answerText = ""; this.reasoning = null; this.answer = null; this.items = {}; }

  reasoningDelta(text) {
    if (!this.reasoning) {
      const details = element("details", "reasoning");
      details.open = true;
      details.appendChild(element("summary", null, "reasoning"));
      this.reasoning = details.appendChild(element("div", "reasoning-text"));
      this.turn.appendChild(details);
    }
    this.reasoning.textContent += text;
  }

  answerDelta(text) {
    if (!this.answer) this.answer = this.turn.appendChild(element("div", "answer"));
    this.answerText += text;
    this.answer.innerHTML = renderMarkdown(this.answerText);
  }

  toolStarted(item) {
    const box = this.turn.appendChild(element("div", "tool"));
    const call = box.appendChild(element("div", "call"));
    this.items[item.id] = { box, call, text: "" };
    this.describe(item);
  }

  toolDelta(id, text) {
    const view = this.items[id];
    if (!view) return;
    view.text += text;
    view.call.textContent = `→ ${view.label}(${view.text})`;
  }

  describe(item) {
    const view = this.items[item.id];
    if (!view) return;
    if (item.type === "function_call") {
      view.label = item.name;
      view.text = item.arguments || view.text;
      view.call.textContent = `→ ${item.name}(${view.text})`;
    } else if (item.type === "code_interpreter_call") {
      view.label = "python";
      view.call.textContent = `→ python\n${item.code || ""}`;
      for (const output of item.outputs || []) this.result(item.id, output.logs || output.url || "");
    } else if (item.type === "web_search_call") {
      const action = item.action || {};
      view.call.textContent = `→ browser: ${action.type || "search"} ${action.query || action.url || action.pattern || ""}`;
    }
  }

  result(id, text) {
    const view = this.items[id];
    if (view) view.box.appendChild(element("div", "result", `← ${text}`));
  }

  note(text, className = "note") { this.turn.appendChild(element("div", className, text)); }
}

// -- one request, and the conversation around it ------------------------------------------------------------

async function streamTurn(view, input) {
  view.reasoning = null;  // each response (a tool round's too) shows its own reasoning and answer
  view.answer = null;
  view.answerText = "";
  const body = {
    model: state.model,
    input,
    stream: true,
    reasoning: { effort: $("#effort").value },
    tools: [
      ...($("#demo-tools").checked ? [WEATHER_TOOL] : []),
      ...($("#python-tool").checked ? [{ type: "code_interpreter", container: { type: "auto" } }] : []),
      ...($("#web-search").checked ? [{ type: "web_search" }] : []),
    ],
  };
  if (state.previous) body.previous_response_id = state.previous;
  const started = performance.now();
  const response = await fetch("v1/responses", {
    method: "POST", headers: headers(), body: JSON.stringify(body), signal: state.controller.signal,
  });
  if (!response.ok) {
    if (response.status === 401) { $("#key-form").hidden = false; $("#model").textContent = "needs an API key"; }
    view.note(await errorMessage(response), "error");
    return null;
  }
  let finished = null;
  for await (const [event, data] of serverEvents(response)) {
    if (event === "response.reasoning_text.delta") view.reasoningDelta(data.delta);
    else if (event === "response.output_text.delta") view.answerDelta(data.delta);
    else if (event === "response.output_item.added" && data.item.type !== "message" && data.item.type !== "reasoning") view.toolStarted(data.item);
    else if (event === "response.function_call_arguments.delta") view.toolDelta(data.item_id, data.delta);
    else if (event === "response.output_item.done") view.describe(data.item);
    else if (event === "response.completed" || event === "response.incomplete") finished = data.response;
    else if (event === "error") { view.note(data.message, "error"); return null; }
    scrollDown();
  }
  if (!finished) { view.note("the reply ended early", "error"); return null; }
  state.previous = finished.id;
  const usage = finished.usage || {};
  const seconds = (performance.now() - started) / 1000;
  const rate = usage.output_tokens ? ` · ${(usage.output_tokens / seconds).toFixed(1)} tokens/s` : "";
  view.note(`${usage.input_tokens ?? "?"} prompt + ${usage.output_tokens ?? "?"} reply tokens${rate}`, "stats");
  if (finished.status === "incomplete") view.note(`stopped: ${(finished.incomplete_details || {}).reason || "incomplete"}`);
  return finished.output.filter((item) => item.type === "function_call");
}

async function send(text) {
  const turn = newTurn();
  turn.appendChild(element("div", "user", text));
  const view = new TurnView(turn);
  state.controller = new AbortController();
  state.stopped = false;
  $("#send").hidden = true;
  $("#stop").hidden = false;
  try {
    let input = [{ role: "user", content: text }];
    for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
      const calls = await streamTurn(view, input);
      if (!calls || !calls.length) break;
      input = [];
      for (const call of calls) {
        const output = await runFunction(call.name, call.arguments);
        view.result(call.id, output);
        input.push({ type: "function_call_output", call_id: call.call_id, output });
      }
    }
  } catch (error) {
    if (error.name === "AbortError") view.note("stopped");
    else view.note(`lost the connection to the server: ${error.message}`, "error");
  } finally {
    state.controller = null;
    $("#send").hidden = false;
    $("#stop").hidden = true;
    scrollDown();
  }
}

// -- wiring ------------------------------------------------------------------------------------------------

$("#composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("#prompt").value.trim();
  if (!text || state.controller) return;
  if (!state.model) { connect().then(() => state.model && send(text)); $("#prompt").value = ""; return; }
  $("#prompt").value = "";
  send(text);
});
$("#prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("#composer").requestSubmit(); }
});
$("#stop").addEventListener("click", () => { if (state.controller) state.controller.abort(); });
$("#new-chat").addEventListener("click", () => { state.previous = null; $("#log").replaceChildren(); });
$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("#key").value);
  $("#key").value = "";
  connect();
});

connect().catch((error) => showError(`cannot reach the server: ${error.message}`));
