// texnet's page: plain JavaScript over the JSON API in webapp/app.py.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const state = { texture: null, style: null, trainedModel: null };

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function asJson(form) {
  return { method: "POST", headers: { "Content-Type": "application/json" },
           body: JSON.stringify(Object.fromEntries(new FormData(form))) };
}

// -- tabs ------------------------------------------------------------------------------------------
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) other.classList.toggle("active", other === tab);
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== tab.dataset.tab;
    showError("");
  });
}

// -- models ----------------------------------------------------------------------------------------
async function loadModels(select) {
  const { models } = await api("/api/models");
  for (const kind of ["texture", "style"]) {
    const list = $(kind === "texture" ? "[data-testid=texture-models]" : "[data-testid=style-models]");
    list.replaceChildren();
    for (const model of models.filter((m) => m.kind === kind)) {
      const card = document.createElement("div");
      card.className = "model";
      card.dataset.id = model.id;
      card.dataset.testid = `model-${model.id}`;
      card.setAttribute("data-testid", `model-${model.id}`);
      card.innerHTML = `<img loading="lazy" alt=""><span></span>`;
      $("img", card).src = model.thumbnail;
      $("span", card).textContent = model.name;
      card.addEventListener("click", () => choose(kind, model, list));
      list.append(card);
      if (model.id === select || (!state[kind] && list.children.length === 1)) choose(kind, model, list);
    }
  }
}

function choose(kind, model, list) {
  state[kind] = model;
  for (const card of list.children) card.classList.toggle("selected", card.dataset.id === model.id);
  if (kind === "style") {
    const choice = $(".style-choice");
    choice.hidden = model.styles.length === 0;
    const names = $("[data-testid=style-name]");
    names.replaceChildren(...model.styles.map((name) => new Option(name, name)));
    if (model.styles.length > 1) names.append(new Option(`blend: ${model.styles.slice(0, 2).join(" + ")}`,
                                                         `${model.styles[0]}:0.5,${model.styles[1]}:0.5`));
  }
}

// -- textures --------------------------------------------------------------------------------------
$("#sample-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  try {
    const request = asJson(event.target);
    request.body = JSON.stringify({ ...JSON.parse(request.body), model: state.texture?.id });
    const result = await api("/api/sample", request);
    $("[data-testid=sample-time]").textContent = `${result.images.length} sample(s) in ${result.milliseconds.toFixed(0)} ms`;
    $("#samples").replaceChildren(...result.images.map((image, index) => {
      const figure = document.createElement("figure");
      figure.innerHTML = `<img data-testid="sample-image"><img data-testid="tiled-image" class="tiled">
        <figcaption>${image.width}x${image.height}, seed ${Number(new FormData(event.target).get("seed")) + index}
        · <a data-testid="download-sample" download>download PNG</a> · 3x3 tiling below</figcaption>`;
      $("[data-testid=sample-image]", figure).src = image.url;
      $("[data-testid=tiled-image]", figure).src = image.tiled;
      $("[data-testid=tiled-image]", figure).style.maxWidth = "240px";
      $("a", figure).href = `${image.url}?download=1`;
      return figure;
    }));
  } catch (error) { showError(error.message); }
});

// -- stylize ---------------------------------------------------------------------------------------
$("#stylize-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const form = new FormData(event.target);
  form.set("model", state.style?.id || "");
  if (!state.style?.styles.length) form.delete("style");
  try {
    const result = await api("/api/stylize", { method: "POST", body: form });
    $("[data-testid=before]").src = result.before;
    $("[data-testid=after]").src = result.after;
    $("[data-testid=download-styled]").href = `${result.after}?download=1`;
    $("[data-testid=stylize-time]").textContent = `${result.width}x${result.height} in ${result.milliseconds.toFixed(0)} ms`;
  } catch (error) { showError(error.message); }
});

// -- training and the Gatys comparison -------------------------------------------------------------
async function follow(job, onUpdate) {
  while (true) {
    const current = await api(`/api/jobs/${job.id}`);
    onUpdate(current);
    if (current.state !== "running") return current;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function drawLoss(losses) {
  const canvas = $("#loss");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (losses.length < 2) return;
  const logs = losses.map((value) => Math.log10(Math.max(value, 1e-12)));
  const low = Math.min(...logs), high = Math.max(...logs);
  context.beginPath();
  logs.forEach((value, index) => {
    const x = (index / (logs.length - 1)) * (canvas.width - 10) + 5;
    const y = canvas.height - 5 - ((value - low) / (high - low || 1)) * (canvas.height - 10);
    index ? context.lineTo(x, y) : context.moveTo(x, y);
  });
  context.strokeStyle = "#b5651d";
  context.stroke();
}

$("#train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const status = $("[data-testid=train-status]");
  try {
    const job = await api("/api/train", { method: "POST", body: new FormData(event.target) });
    $("#cancel").disabled = false;
    $("#cancel").onclick = () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch((e) => showError(e.message));
    $("#compare").hidden = true;
    const done = await follow(job, (current) => {
      status.textContent = `${current.state}: ${current.iteration} of ${current.iterations} iterations, ` +
        `${current.seconds.toFixed(0)} s` + (current.losses.length ? `, loss ${current.losses.at(-1).toExponential(3)}` : "");
      drawLoss(current.losses);
      $("#previews").replaceChildren(...current.previews.slice(-5).map((url) => {
        const image = document.createElement("img");
        image.src = url;
        image.setAttribute("data-testid", "preview");
        return image;
      }));
    });
    $("#cancel").disabled = true;
    if (done.state === "failed") throw new Error(done.error);
    if (done.state === "done") {
      state.trainedModel = done.result.model;
      status.textContent = `done: model ${done.result.name} in ${done.seconds.toFixed(0)} s; it is in the Textures tab`;
      await loadModels(done.result.model);
      $("#compare").hidden = false;
    }
  } catch (error) { showError(error.message); }
});

$("#gatys").addEventListener("click", async () => {
  showError("");
  try {
    const job = await api("/api/gatys", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ model: state.trainedModel,
                                                                 iterations: $("#gatys-iterations").value }) });
    const done = await follow(job, (current) => {
      $("[data-testid=gatys-time]").textContent = `Gatys: ${current.iteration} of ${current.iterations} steps, ${current.seconds.toFixed(0)} s`;
    });
    if (done.state === "failed") throw new Error(done.error);
    $("[data-testid=compare-example]").src = done.result.example;
    $("[data-testid=compare-gatys]").src = done.result.gatys;
    $("[data-testid=compare-sample]").src = done.result.sample;
    $("[data-testid=gatys-time]").textContent = `Gatys: ${done.result.gatys_seconds.toFixed(1)} s`;
    $("[data-testid=sample-time-ff]").textContent = `feed-forward: ${(done.result.sample_seconds * 1000).toFixed(0)} ms`;
  } catch (error) { showError(error.message); }
});

loadModels().catch((error) => showError(error.message));
