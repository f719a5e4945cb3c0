// The console's only script (CSP: script-src 'self'). Anything that came from Dify or a
// client is put on the page with textContent, never as HTML.
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showTimes(root) {
  for (const cell of root.querySelectorAll("[data-epoch]")) {
    const epoch = parseFloat(cell.dataset.epoch);
    if (epoch) cell.textContent = new Date(epoch * 1000).toLocaleTimeString();
  }
}

function copyButtons() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) navigator.clipboard.writeText(source.textContent);
    button.textContent = "Copied";
  });
}

// --- overview ---------------------------------------------------------------------------

function formatLive(name, value, format) {
  if (value === null || value === undefined) return "–";
  if (format === "percent") return (value * 100).toFixed(1) + " %";
  if (format === "ms") return Math.round(value) + " ms";
  if (format === "duration") return value + " s";
  return String(value);
}

function chart(id, label, xs, ys) {
  const target = document.getElementById(id);
  if (!target || typeof uPlot === "undefined") return null;
  target.textContent = "";
  return new uPlot(
    { width: Math.max(280, target.clientWidth), height: 160, legend: { show: false },
      series: [{}, { label, stroke: "#2b6cb0", fill: "rgba(43,108,176,0.12)" }],
      axes: [{}, { size: 50 }] },
    [xs, ys], target);
}

function overview() {
  let plots = null;
  async function refresh() {
    const response = await fetch("/console/live", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const live = await response.json();
    for (const node of document.querySelectorAll("[data-live]")) {
      node.textContent = formatLive(node.dataset.live, live[node.dataset.live], node.dataset.format);
    }
    const s = live.series;
    if (!plots) {
      plots = [chart("chart-requests", "requests", s.t, s.requests),
               chart("chart-ttft", "ttft p95", s.t, s.ttft_p95)];
    } else {
      if (plots[0]) plots[0].setData([s.t, s.requests]);
      if (plots[1]) plots[1].setData([s.t, s.ttft_p95]);
    }
  }
  refresh();
  setInterval(refresh, 5000);
}

// --- playground -------------------------------------------------------------------------

function playground() {
  const root = document.getElementById("playground");
  const token = root.dataset.token;
  const base = root.dataset.base;
  const log = document.getElementById("pg-log");
  const form = document.getElementById("pg-form");
  const input = document.getElementById("pg-input");
  const image = document.getElementById("pg-image");
  let history = [];
  let lastBody = null;

  document.getElementById("pg-new").addEventListener("click", () => {
    history = [];
    log.textContent = "";
    document.getElementById("pg-conversation").textContent = "–";
  });

  function readImage(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    let content = text;
    const userBox = el("div", "msg user");
    userBox.append(el("div", "who", "You"), el("div", "text", text));
    if (image.files.length) {
      const file = image.files[0];
      const url = await readImage(file);
      content = [{ type: "text", text }, { type: "image_url", image_url: { url } }];
      userBox.append(el("div", "file", "📎 " + file.name));
      image.value = "";
    }
    log.append(userBox);
    input.value = "";
    history.push({ role: "user", content });
    await send();
  });

  async function send() {
    const model = document.getElementById("pg-model").value;
    const body = { model, messages: history, stream: true, stream_options: { include_usage: true } };
    lastBody = body;
    const box = el("div", "msg assistant");
    const details = el("details", "reasoning");
    details.hidden = true;
    details.append(el("summary", "", "Reasoning / flow steps"));
    const reasoning = el("div", "text");
    details.append(reasoning);
    const answer = el("div", "text answer");
    box.append(el("div", "who", model), details, answer);
    log.append(box);
    const started = performance.now();
    let first = null;
    let full = "";
    try {
      const response = await fetch(base + "/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify(body),
      });
      const conversation = response.headers.get("X-Dify-Conversation-Id");
      if (conversation) document.getElementById("pg-conversation").textContent = conversation;
      if (!response.ok) {
        const error = await response.json().catch(() => ({}));
        answer.textContent = "Error " + response.status + ": " + ((error.error || {}).message || "");
        box.classList.add("bad");
        history.pop();
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          for (const line of frame.split("\n")) {
            if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
            const chunk = JSON.parse(line.slice(6));
            if (chunk.error) {
              answer.append(el("div", "error", "Error: " + (chunk.error.message || chunk.error.code)));
              continue;
            }
            if (chunk.usage) {
              const u = chunk.usage;
              document.getElementById("pg-usage").textContent =
                u.prompt_tokens + " in / " + u.completion_tokens + " out";
            }
            const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
            if (delta.reasoning_content) {
              details.hidden = false;
              reasoning.textContent += delta.reasoning_content;
            }
            if (delta.content) {
              if (first === null) {
                first = performance.now();
                document.getElementById("pg-ttft").textContent = Math.round(first - started) + " ms";
              }
              full += delta.content;
              answer.textContent = full;
            }
          }
        }
      }
      history.push({ role: "assistant", content: full });
    } catch (error) {
      answer.textContent = "The request failed: " + error;
      history.pop();
    }
    document.getElementById("pg-total").textContent = Math.round(performance.now() - started) + " ms";
  }

  function codeFor(kind) {
    if (!lastBody) return "Send a message first.";
    const json = JSON.stringify(lastBody, null, 2);
    const url = base + "/v1/chat/completions";
    if (kind === "curl") {
      return "curl -sS " + url + " \\\n  -H 'Authorization: Bearer YOUR_KEY' \\\n" +
        "  -H 'Content-Type: application/json' \\\n  -d '" + json.replace(/'/g, "'\\''") + "'";
    }
    if (kind === "python") {
      return "from openai import OpenAI\n\nclient = OpenAI(base_url=\"" + base + "/v1\", api_key=\"YOUR_KEY\")\n" +
        "stream = client.chat.completions.create(**" + json.replace(/\btrue\b/g, "True") + ")\n" +
        "for chunk in stream:\n    if chunk.choices:\n        print(chunk.choices[0].delta.content or \"\", end=\"\")";
    }
    return "const response = await fetch('" + url + "', {\n  method: 'POST',\n" +
      "  headers: { 'Content-Type': 'application/json', Authorization: 'Bearer YOUR_KEY' },\n" +
      "  body: JSON.stringify(" + json + "),\n});";
  }

  for (const button of root.querySelectorAll("[data-copy-as]")) {
    button.addEventListener("click", () => {
      const code = document.getElementById("pg-code");
      code.textContent = codeFor(button.dataset.copyAs);
      code.hidden = false;
      if (navigator.clipboard) navigator.clipboard.writeText(code.textContent).catch(() => {});
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showTimes(document);
  document.body.addEventListener("htmx:afterSwap", (event) => showTimes(event.target));
  copyButtons();
  const page = document.body.dataset.page;
  if (page === "overview") overview();
  if (page === "playground") playground();
});
