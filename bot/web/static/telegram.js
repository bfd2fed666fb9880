/* The canvas as a Telegram Web App. Telegram puts the signed initData in the page's address
   (#tgWebAppData=...); it goes back to the server with the drawing, which checks it, reads the
   drawing and posts the answer in the chat. Telegram's own script is not needed for that, so
   the page runs only its own scripts. */
"use strict";

(() => {
  const texts = JSON.parse(document.getElementById("page-data").textContent).texts;
  const $ = (id) => document.getElementById(id);
  const initData = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
  const pad = new DrawingPad($("canvas"));

  function status(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  function postEvent(eventType, eventData = {}) {
    // Telegram's apps listen here (mobile and desktop) or as the parent frame (web).
    if (window.TelegramWebviewProxy) {
      window.TelegramWebviewProxy.postEvent(eventType, JSON.stringify(eventData));
    } else if (window.parent !== window) {
      window.parent.postMessage(JSON.stringify({ eventType, eventData }), "https://web.telegram.org");
    }
  }

  if (!initData) status(texts["web.telegram.open_in_telegram"], true);
  postEvent("web_app_ready");

  $("clear-drawing").addEventListener("click", () => pad.clear());
  $("send-drawing").addEventListener("click", async () => {
    if (pad.isEmpty || !initData) return;
    status(texts["web.reading"]);
    const headers = { "X-Telegram-Init-Data": initData, "Content-Type": "image/png" };
    const { ok, answer: result } = await postPicture("/telegram/drawing", headers, await pad.toBlob(), texts);
    if (!ok) {
      status(result.text, true);
      return;
    }
    status(`${result.text}\n${result.sent}`);
    setTimeout(() => postEvent("web_app_close"), 1500);
  });
})();
