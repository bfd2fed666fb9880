"""The web pages in a real browser: Debian's Chromium driven by Playwright, against the running service.

A photo uploaded and read, corrected and stored; a digit drawn with mouse moves and read; the
admin signing in, starting a small run and watching it live to its promotion. Each page is saved
as a screenshot under out/screenshots (WEB_SCREENSHOTS to move it). Skipped, saying why, where
Chromium is missing (.ci/run installs it).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from bot_support import digit_photo, mnist_digit
from sqlalchemy import select
from web_support import ADMIN_TOKEN, RunningWeb, running_web, web_environment

from db.models import Prediction
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("WEB_SCREENSHOTS", PROJECT_ROOT / "out" / "screenshots"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(
    tmp_path_factory: pytest.TempPathFactory, trained_model_dir: Path, data_dir: Path
) -> AsyncIterator[RunningWeb]:
    folder = tmp_path_factory.mktemp("web-browser")
    model_dir = Path(shutil.copytree(trained_model_dir, folder / "models"))
    # Epochs of about a second each: a browser on a busy machine must see each one arrive.
    environment = web_environment(folder, model_dir, data_dir, TRAINING_TRAIN_LIMIT="40000")
    async with running_web(environment) as running:
        yield running


def expect(locator):
    """Playwright's retrying assertions (they wait without evaluating script, which the CSP forbids)."""
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def new_page(browser, width: int = 1100, height: int = 900):
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    return page, errors


async def test_a_photo_is_read_then_corrected_and_stored(
    web: RunningWeb, browser, mnist: Mnist, tmp_path: Path
) -> None:
    photo = tmp_path / "seven.jpg"
    photo.write_bytes(digit_photo([mnist_digit(mnist, 7)], size=(1280, 960)))
    page, errors = await new_page(browser, 390, 844)  # a phone's screen
    await page.goto(web.url + "/")
    await page.screenshot(path=SCREENSHOTS / "home-phone.png", full_page=True)
    await page.set_input_files("#file-input", str(photo))
    answer = page.locator("#answer-text")
    await answer.wait_for()
    await expect(answer).to_have_text(re.compile(r"^I read"))
    assert (await answer.text_content()).startswith("I read: 7")
    assert await page.locator("#boxes rect").count() == 1
    assert await page.locator("#boxes text").text_content() == "7"
    await page.screenshot(path=SCREENSHOTS / "answer-phone.png", full_page=True)

    await page.get_by_role("button", name="❌ Wrong — correct it").click()
    await page.locator("#pad").wait_for()
    await page.screenshot(path=SCREENSHOTS / "correction-pad-phone.png", full_page=True)
    await page.locator("#pad-keys button", has_text="1").first.click()
    await expect(answer).to_contain_text("Corrected to 1")
    assert errors == []
    with web.services.sessions() as session:
        prediction = session.scalars(select(Prediction).order_by(Prediction.id.desc())).first()
        assert (prediction.channel, prediction.source, prediction.digits) == ("web", "file", "7")
        assert prediction.feedback.corrected_digits == "1"
        assert [sample.label for sample in prediction.samples] == [1]


async def test_a_digit_drawn_with_the_mouse_is_read(web: RunningWeb, browser) -> None:
    page, errors = await new_page(browser)
    await page.goto(web.url + "/")
    await page.click("#tab-draw")
    canvas = page.locator("#canvas")
    box = await canvas.bounding_box()

    async def stroke(points: list[tuple[float, float]]) -> None:
        # Points in the canvas's fractions; many small moves, as a hand makes them.
        x, y = points[0]
        await page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        await page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for step in range(1, 11):
                fraction = step / 10
                await page.mouse.move(
                    box["x"] + (x0 + (x1 - x0) * fraction) * box["width"],
                    box["y"] + (y0 + (y1 - y0) * fraction) * box["height"],
                )
        await page.mouse.up()

    await stroke([(0.40, 0.18), (0.62, 0.18), (0.47, 0.85)])  # a 7: the bar, then the stem
    await page.screenshot(path=SCREENSHOTS / "drawing.png")
    await page.click("#read-drawing")
    await expect(page.locator("#answer-text")).to_have_text(re.compile(r"^I read"))
    assert (await page.locator("#answer-text").text_content()).startswith("I read: 7")
    await page.screenshot(path=SCREENSHOTS / "drawing-answer.png", full_page=True)
    assert errors == []
    with web.services.sessions() as session:
        prediction = session.scalars(select(Prediction).order_by(Prediction.id.desc())).first()
        assert (prediction.source, prediction.digits) == ("drawing", "7")


async def test_the_admin_starts_a_run_and_watches_it_live_to_its_promotion(web: RunningWeb, browser) -> None:
    before = ModelRegistry(web.services.settings.model_dir).current_version()
    page, errors = await new_page(browser, 1280, 1000)
    await page.goto(web.url + "/admin")
    await page.screenshot(path=SCREENSHOTS / "admin-sign-in.png")
    await page.fill("#token", "not the token at all")
    await page.click("button[type=submit]")
    assert "not right" in await page.locator(".error").text_content()
    errors.clear()  # the browser logs the refusal's 401 as a failed load
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.locator("#train-form").wait_for()
    await page.evaluate("window.sameDocument = true")  # gone if the page reloads

    await page.select_option("#architecture", "dense")
    await page.fill("#epochs", "3")
    # Every text the live panel shows, recorded as it changes (the run takes seconds).
    await page.evaluate(
        """() => {
            window.shownTexts = [];
            const panel = document.querySelector('#run-text');
            new MutationObserver(() => window.shownTexts.push(panel.textContent))
                .observe(panel, {childList: true, characterData: true, subtree: true});
        }"""
    )
    await page.click("#start-run")
    await expect(page.locator("#run-text")).to_contain_text("Promoted", timeout=120_000)
    assert await page.evaluate("window.sameDocument") is True
    shown = await page.evaluate("window.shownTexts")
    for epoch in (1, 2, 3):
        assert any(f"Epoch {epoch}/3" in text and "Promoted" not in text for text in shown), shown
    assert len(set(shown)) >= 4  # the panel changed again and again before the summary
    await page.locator("#runs-table tbody tr").first.click()
    await page.locator("#run-confusion table").wait_for()
    after = ModelRegistry(web.services.settings.model_dir).current_version()
    assert after != before
    await expect(page.locator(f'#models-table tr[data-version="{after}"]')).to_contain_text("serving")
    await page.screenshot(path=SCREENSHOTS / "admin-dashboard.png", full_page=True)
    assert errors == []
