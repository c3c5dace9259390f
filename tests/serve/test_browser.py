"""End to end in headless Chromium (Playwright): label a real batch with the keyboard,
undo, skip, ask for the next batch and see the dashboard update. Real MiniLM, VADER
sentences. A screenshot of each page is saved (set ANCHORAL_SCREENSHOT_DIR to keep them)."""

import os
import re
from pathlib import Path

import pytest

from anchoral.serve import create_app
from anchoral.store import Project
from anchoral.store.create import DataSpec, init_project
from tests.serve.conftest import TOKEN, live_server
from tests.store.vader_data import vader_sample

pytestmark = pytest.mark.real_data
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def vader_project(tmp_path):
    pool, held = vader_sample()
    seeds = pool.groupby("sentiment").head(2).index  # two labels of each class to start from
    pool["label"] = pool["sentiment"].where(pool.index.isin(seeds))
    pool[["id", "text", "label"]].to_csv(tmp_path / "reviews.csv", index=False)
    held[["id", "text", "sentiment"]].rename(columns={"sentiment": "label"}).to_csv(tmp_path / "heldout.csv", index=False)
    spec = DataSpec(tmp_path / "reviews.csv", "text", "id", "label")
    init_project(tmp_path / "reviews", spec, ["positive", "negative"], heldout=tmp_path / "heldout.csv", batch_size=6).close()
    return tmp_path / "reviews", dict(zip(pool["id"], pool["sentiment"]))


@pytest.fixture
def screenshots(tmp_path):
    directory = Path(os.environ.get("ANCHORAL_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_label_a_batch_with_the_keyboard_undo_skip_next_batch_and_dashboard(vader_project, screenshots):
    from playwright.sync_api import expect, sync_playwright

    project_dir, truth = vader_project
    saved = []

    def shot(page, name):
        path = screenshots / f"{len(saved) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    def key_for(page):
        return "1" if truth[page.get_attribute("#item", "data-item-id")] == "positive" else "2"

    def press(page, key):  # labels go by fetch: wait until nothing is on its way
        page.keyboard.press(key)
        page.wait_for_function("document.documentElement.dataset.pending === '0'")

    app = create_app(project_dir, token=TOKEN)
    with live_server(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 720})
        page.goto(f"{base}/?token={TOKEN}")
        assert "token" not in page.url
        expect(page.locator("#no-item")).to_contain_text("No batch yet")
        shot(page, "no-batch-yet")

        page.click("#next-batch")
        expect(page.locator("#job")).to_be_visible()
        shot(page, "next-batch-working")
        page.wait_for_url(re.compile(r"/label$"), timeout=180_000)
        expect(page.locator("#item")).to_be_visible()
        expect(page.locator("#progress")).to_have_text("0 of 6 labeled")
        shot(page, "label-item")

        first = page.get_attribute("#item", "data-item-id")
        press(page, key_for(page))
        expect(page.locator("#progress")).to_have_text("1 of 6 labeled")
        press(page, "u")
        assert page.get_attribute("#item", "data-item-id") == first
        expect(page.locator("#notice")).to_contain_text("Label taken back")
        expect(page.locator("#progress")).to_have_text("0 of 6 labeled")
        shot(page, "after-undo")
        press(page, key_for(page))

        skipped = page.get_attribute("#item", "data-item-id")
        press(page, "s")
        assert page.get_attribute("#item", "data-item-id") != skipped
        order = []
        while page.locator("#item").count():
            order.append(page.get_attribute("#item", "data-item-id"))
            press(page, key_for(page))
        assert order[-1] == skipped and len(order) == 5  # the skipped item came back last
        expect(page.locator("#batch-complete")).to_be_visible()
        expect(page.locator("#progress")).to_have_text("6 of 6 labeled")
        shot(page, "batch-complete")

        page.goto(f"{base}/dashboard")
        expect(page.locator("#labeled-total")).to_have_text("10")
        expect(page.locator("#learning-curve circle")).to_have_count(1)
        shot(page, "dashboard-round-1")

        page.goto(f"{base}/label")
        page.click("#next-batch")
        page.wait_for_url(re.compile(r"/label$"), timeout=180_000)
        expect(page.locator("#progress")).to_have_text("0 of 6 labeled")
        expect(page.locator(".card").first).to_contain_text("round 2")
        page.goto(f"{base}/dashboard")
        expect(page.locator("#learning-curve circle")).to_have_count(2)
        expect(page.locator("#rounds tr")).to_have_count(3)
        shot(page, "dashboard-round-2")
        browser.close()

    print("\nscreenshots:\n" + "\n".join(f"  {path}" for path in saved))
    with Project.open(project_dir) as project:
        rounds = project.rounds()
        assert [r.n_labeled for r in rounds] == [4, 10] and all("heldout" in r.metrics for r in rounds)
        assert [e.label for e in project.history(first)] == [truth[first], None, truth[first]]
        for item_id in order:
            assert project.history(item_id)[-1].label == truth[item_id]
