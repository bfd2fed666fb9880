/* The admin dashboard: training started, cancelled and followed live (server-sent events, curves
   drawn with uPlot as epochs arrive), the runs' history, the models, usage over time.
   Every request that changes something spends the page's CSRF token and gets the next one. */
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const texts = page.texts;
  const $ = (id) => document.getElementById(id);
  let csrf = page.csrf;
  let queue = Promise.resolve();
  let lastFinishedRun = null;

  function message(text, isError = false) {
    $("message").textContent = text;
    $("message").classList.toggle("error", isError);
  }

  // --- Requests -------------------------------------------------------------------------------
  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.status === 401) location.reload();
    return response.json();
  }

  function post(url, body = {}) {
    // One at a time: each request spends the token the previous answer brought.
    const sending = queue.then(async () => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      csrf = response.headers.get("X-CSRF-Token") || csrf;
      if (response.status === 401) location.reload();
      const result = await response.json().catch(() => ({ text: "" }));
      message(result.text, !response.ok);
      return { ok: response.ok, result };
    });
    queue = sending.catch(() => undefined);
    return sending;
  }

  // --- Charts ---------------------------------------------------------------------------------
  const COLORS = ["#2457d6", "#d9480f", "#1f8a4c", "#7b2cbf"];

  function marksPlugin(getMarks) {
    // A dashed line across the curves at each turning point of the run, with its label.
    return {
      hooks: {
        draw: [
          (plot) => {
            const context = plot.ctx;
            const { top, height } = plot.bbox;
            context.save();
            context.strokeStyle = "#888";
            context.fillStyle = "#444";
            context.setLineDash([5, 4]);
            context.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
            for (const mark of getMarks()) {
              const x = plot.valToPos(mark.epoch, "x", true);
              context.beginPath();
              context.moveTo(x, top);
              context.lineTo(x, top + height);
              context.stroke();
              context.fillText(mark.label, x + 4, top + 14 * devicePixelRatio);
            }
            context.restore();
          },
        ],
      },
    };
  }

  function makeChart(element, title, labels, options = {}) {
    const series = [{ label: options.xLabel ?? "epoch" }].concat(
      labels.map((label, index) => ({
        label,
        stroke: COLORS[index % COLORS.length],
        width: 2,
        points: { show: true, size: 5 },
        ...(options.bars && index === 0 ? { paths: uPlot.paths.bars({ size: [0.6, 40] }), fill: "#2457d640" } : {}),
      })),
    );
    const chart = new uPlot(
      {
        title,
        width: Math.max(280, element.clientWidth),
        height: 240,
        scales: { x: { time: Boolean(options.time) }, y: options.y || {} },
        series,
        plugins: options.marks ? [marksPlugin(options.marks)] : [],
      },
      [[], ...labels.map(() => [])],
      element,
    );
    new ResizeObserver(() => chart.setSize({ width: Math.max(280, element.clientWidth), height: 240 })).observe(element);
    return chart;
  }

  function epochData(history, names) {
    return [history.map((epoch) => epoch.epoch), ...names.map((name) => history.map((epoch) => epoch[name] ?? null))];
  }

  function confusionTable(element, matrix) {
    element.replaceChildren();
    if (!matrix) {
      element.textContent = texts["web.admin.no_confusion"];
      return;
    }
    const largest = Math.max(1, ...matrix.flat());
    const table = document.createElement("table");
    table.className = "confusion";
    const header = table.insertRow();
    header.append(document.createElement("th"));
    for (let digit = 0; digit < 10; digit++) {
      const cell = document.createElement("th");
      cell.textContent = digit;
      header.append(cell);
    }
    matrix.forEach((row, truth) => {
      const line = table.insertRow();
      const head = document.createElement("th");
      head.textContent = truth;
      line.append(head);
      row.forEach((count, read) => {
        const cell = line.insertCell();
        cell.textContent = count || "";
        const strength = count / largest;
        const hue = truth === read ? "36, 87, 214" : "192, 57, 43";
        cell.style.backgroundColor = `rgba(${hue}, ${count ? 0.08 + 0.8 * strength : 0})`;
        if (strength > 0.55) cell.style.color = "#fff";
      });
    });
    element.append(table);
  }

  // --- The live run ---------------------------------------------------------------------------
  let liveMarks = [];
  const liveAccuracy = makeChart($("live-accuracy"), texts["web.admin.accuracy_chart"],
    [texts["web.admin.train_accuracy"], texts["web.admin.val_accuracy"]], { marks: () => liveMarks });
  const liveLoss = makeChart($("live-loss"), texts["web.admin.loss_chart"],
    [texts["web.admin.train_loss"], texts["web.admin.val_loss"]], { marks: () => liveMarks });

  function showLive(state) {
    const run = state.run;
    $("notes").replaceChildren(
      ...state.notes.map((note) => {
        const item = document.createElement("li");
        item.textContent = `${new Date(note.at * 1000).toLocaleString()}: ${note.text}`;
        return item;
      }),
    );
    if (!run) return;
    $("progress-fill").style.width = `${Math.round(100 * (run.finished ? 1 : run.progress))}%`;
    $("run-text").textContent = run.text;
    $("run-text").dataset.runId = run.run_id;
    $("run-text").dataset.status = run.status;
    liveMarks = run.marks;
    liveAccuracy.setData(epochData(run.history, ["accuracy", "val_accuracy"]));
    liveLoss.setData(epochData(run.history, ["loss", "val_loss"]));
    $("cancel-run").disabled = run.finished;
    if (run.finished && lastFinishedRun !== run.run_id) {
      lastFinishedRun = run.run_id;
      loadRuns();
      loadModels();
    }
  }

  function follow() {
    const events = new EventSource("/admin/api/events");
    events.addEventListener("state", (event) => showLive(JSON.parse(event.data)));
    events.addEventListener("error", () => {
      // The browser reconnects by itself; a lost session means signing in again.
      fetch("/admin/api/models").then((response) => { if (response.status === 401) location.reload(); });
    });
  }

  $("train-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const epochs = parseInt($("epochs").value, 10);
    const { ok } = await post("/admin/api/train", {
      architecture: $("architecture").value,
      epochs: Number.isNaN(epochs) ? null : epochs,
    });
    if (ok) loadRuns();
  });
  $("cancel-run").addEventListener("click", () => post("/admin/api/cancel"));
  $("sign-out").addEventListener("click", async () => {
    await post("/admin/sign-out");
    location.reload();
  });

  // --- Runs -----------------------------------------------------------------------------------
  const runAccuracy = makeChart($("run-accuracy"), texts["web.admin.accuracy_chart"],
    [texts["web.admin.train_accuracy"], texts["web.admin.val_accuracy"]]);

  function percent(value) {
    return value === null || value === undefined ? "–" : `${(100 * value).toFixed(2)}%`;
  }

  async function loadRuns() {
    const { runs } = await getJson("/admin/api/runs");
    const body = $("runs-table").tBodies[0];
    body.replaceChildren();
    for (const run of runs) {
      const row = body.insertRow();
      row.className = "clickable";
      const promoted = run.promoted === null ? "–" : run.promoted ? texts["web.admin.yes"] : texts["web.admin.no"];
      for (const value of [`#${run.id}`, run.started_at, run.architecture, run.trigger, run.status, percent(run.test_accuracy), promoted]) {
        row.insertCell().textContent = value;
      }
      if (run.promoted) row.cells[6].className = "promoted";
      row.title = run.promotion_reason || run.error || "";
      row.addEventListener("click", () => {
        for (const other of body.rows) other.classList.remove("selected");
        row.classList.add("selected");
        showRun(run);
      });
    }
  }

  function showRun(run) {
    $("run-title").textContent = `#${run.id} · ${run.architecture} · ${run.status}` +
      (run.promotion_reason ? ` · ${run.promotion_reason}` : "");
    runAccuracy.setData(epochData(run.epochs, ["accuracy", "val_accuracy"]));
    confusionTable($("run-confusion"), run.confusion);
  }

  // --- Models ---------------------------------------------------------------------------------
  async function loadModels() {
    const models = await getJson("/admin/api/models");
    $("serving").textContent = models.serving;
    const body = $("models-table").tBodies[0];
    body.replaceChildren();
    for (const model of models.versions) {
      const row = body.insertRow();
      row.dataset.version = model.version;
      for (const value of [model.version, model.architecture, (model.created_at || "").replace("T", " "), percent(model.test_accuracy)]) {
        row.insertCell().textContent = value;
      }
      const action = row.insertCell();
      if (model.version === models.current) {
        action.textContent = texts["web.admin.serving_now"];
        action.className = "serving";
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = model.version === models.previous ? texts["web.admin.roll_back"] : texts["web.admin.serve"];
        button.addEventListener("click", async () => {
          const { ok } = await post("/admin/api/serve", { version: model.version });
          if (ok) loadModels();
        });
        action.append(button);
      }
    }
    $("changes").replaceChildren(
      ...models.changes.map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }),
    );
  }

  // --- Usage ----------------------------------------------------------------------------------
  const usageChart = makeChart($("usage-chart"), texts["web.admin.usage_chart"],
    [texts["web.admin.answers"], texts["web.admin.verdicts"]], { time: true, bars: true, xLabel: "" });
  const accuracyChart = makeChart($("accuracy-chart"), texts["web.admin.accuracy_over_time"],
    [texts["web.admin.right_share"]], { time: true, xLabel: "", y: { range: [0, 1] } });

  async function loadUsage() {
    const usage = await getJson("/admin/api/usage");
    $("usage-summary").replaceChildren(
      ...usage.summary.map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }),
    );
    const days = usage.days.map((day) => Date.parse(`${day.day}T12:00:00Z`) / 1000);
    usageChart.setData([days, usage.days.map((day) => day.predictions), usage.days.map((day) => day.verdicts)]);
    accuracyChart.setData([days, usage.days.map((day) => day.accuracy)]);
    confusionTable($("users-confusion"), usage.confusion);
  }

  follow();
  loadRuns();
  loadModels();
  loadUsage();
})();
