/* The home page: a picture (file, drop, paste, camera) or a drawing goes to /api/read; the answer
   is drawn over the picture, and the verdict goes to /api/verdict. Every word comes from the
   server (page-data), none is written here. */
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const texts = page.texts;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let current = null; // the answer on screen
  let previewUrl = null;

  // --- Tabs -----------------------------------------------------------------------------------
  function showTab(name) {
    for (const tab of ["photo", "draw"]) {
      $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
      $(`${tab}-panel`).hidden = tab !== name;
    }
  }
  $("tab-photo").addEventListener("click", () => showTab("photo"));
  $("tab-draw").addEventListener("click", () => showTab("draw"));

  // --- Status line ----------------------------------------------------------------------------
  function status(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  // --- Sending a picture ------------------------------------------------------------------------
  async function send(blob, source) {
    if (!blob) return;
    if (blob.size > page.maxFileBytes) {
      status(texts["web.file_over_limit"], true);
      return;
    }
    status(texts["web.reading"]);
    const headers = {
      "X-CSRF-Token": page.csrf,
      "X-Picture-Source": source,
      "Content-Type": blob.type || "application/octet-stream",
    };
    const { ok, answer } = await postPicture("/api/read", headers, blob, texts);
    if (!ok) {
      status(answer.text, true);
      return;
    }
    status("");
    show(blob, answer);
  }

  $("file-input").addEventListener("change", (event) => send(event.target.files[0], "file"));
  $("camera-input").addEventListener("change", (event) => send(event.target.files[0], "photo"));

  const dropZone = $("drop-zone");
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    send(event.dataTransfer.files[0], "file");
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((entry) => entry.type.startsWith("image/"));
    if (item) send(item.getAsFile(), "file");
  });

  const pad = new DrawingPad($("canvas"));
  $("clear-drawing").addEventListener("click", () => pad.clear());
  $("read-drawing").addEventListener("click", async () => {
    if (!pad.isEmpty) send(await pad.toBlob(), "drawing");
  });

  // --- Showing the answer -----------------------------------------------------------------------
  function show(blob, answer) {
    current = answer;
    $("answer").hidden = false;
    $("answer-text").textContent = answer.text;
    $("answer-text").classList.remove("final");
    $("pad").hidden = true;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    const picture = $("picture");
    picture.onload = () => drawBoxes(picture, answer.digits);
    picture.src = previewUrl;
    const choices = $("choices");
    choices.replaceChildren();
    for (const choice of answer.choices) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = choice.label;
      button.addEventListener("click", () => (choice.pad ? openPad() : judge(choice.verdict)));
      choices.append(button);
    }
    $("answer").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  function drawBoxes(picture, digits) {
    // Boxes are in the pixels of the upright original, which is what the browser shows.
    const width = picture.naturalWidth;
    const height = picture.naturalHeight;
    const svg = $("boxes");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const stroke = Math.max(2, width / 250);
    for (const digit of digits) {
      const [left, top, right, bottom] = digit.box;
      const box = document.createElementNS(SVG, "rect");
      box.setAttribute("x", left);
      box.setAttribute("y", top);
      box.setAttribute("width", right - left);
      box.setAttribute("height", bottom - top);
      box.setAttribute("fill", "none");
      box.setAttribute("stroke", digit.confidence >= 0.8 ? "#1f8a4c" : "#d98c00");
      box.setAttribute("stroke-width", stroke);
      const size = Math.max(height / 14, (bottom - top) * 0.35);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", (left + right) / 2);
      // Above the box, or below it when the box touches the top of the picture.
      label.setAttribute("y", top - stroke * 2 >= size ? top - stroke * 2 : Math.min(height, bottom + size));
      label.setAttribute("text-anchor", "middle");
      label.setAttribute("font-size", size);
      label.setAttribute("font-weight", "700");
      label.setAttribute("fill", "#2457d6");
      label.setAttribute("stroke", "#ffffff");
      label.setAttribute("stroke-width", size / 12);
      label.setAttribute("paint-order", "stroke");
      label.textContent = String(digit.digit);
      const title = document.createElementNS(SVG, "title");
      title.textContent = digit.sure;
      box.append(title);
      svg.append(box, label);
    }
  }

  // --- The verdict ------------------------------------------------------------------------------
  async function judge(verdict) {
    if (!current || !current.prediction_id) return;
    let response;
    try {
      response = await fetch("/api/verdict", {
        method: "POST",
        headers: { "X-CSRF-Token": page.csrf, "Content-Type": "application/json" },
        body: JSON.stringify({ prediction_id: current.prediction_id, ...verdict }),
      });
    } catch (error) {
      status(texts["web.network_error"], true);
      return;
    }
    const result = await response.json().catch(() => ({ text: texts["web.server_error"] }));
    if (!response.ok) {
      status(result.text, true);
      return;
    }
    status("");
    $("answer-text").textContent = result.text;
    $("answer-text").classList.add("final");
    $("choices").replaceChildren();
    $("pad").hidden = true;
  }

  function openPad() {
    const single = (current.read || "").replace(/\s/g, "").length === 1;
    $("pad-title").textContent = single ? texts["web.pad_single"] : texts["web.pad_title"];
    const keys = $("pad-keys");
    keys.replaceChildren();
    for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = key === "⌫" ? texts["button.erase"] : key;
      button.addEventListener("click", () => {
        if (key === "⌫") {
          $("typed").value = $("typed").value.slice(0, -1);
        } else if (single) {
          judge({ digits: key }); // one tap saves a single digit, as in Telegram
        } else if ($("typed").value.length < current.max_digits) {
          $("typed").value += key;
        }
      });
      keys.append(button);
    }
    $("typed").value = "";
    $("pad").hidden = false;
    $("choices").replaceChildren();
    $("typed").focus();
  }

  function saveTyped() {
    const typed = $("typed").value.replace(/\s/g, "");
    if (!typed) {
      status(texts["web.nothing_typed"], true);
    } else if (!/^[0-9]+$/.test(typed) || typed.length > current.max_digits) {
      status(texts["web.not_digits"], true);
    } else {
      judge({ digits: typed });
    }
  }
  $("save").addEventListener("click", saveTyped);
  $("typed").addEventListener("keydown", (event) => {
    if (event.key === "Enter") saveTyped();
  });
})();
