"""In headless Chromium (Playwright, Debian's chromium): fast keyboard labeling records
every key, a stale label shows the conflict instead of overwriting, and next batch asks first."""

import re
import time

import pytest

from anchoral.serve import create_app
from anchoral.store import AnnotationQueue, Project
from anchoral.store.rounds import run_round
from tests.serve.conftest import TOKEN, live_server
from tests.store.fakes import HashingEncoder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def wait_until_sent(page):
    page.wait_for_function("document.documentElement.dataset.pending === '0'", timeout=30_000)


def test_twenty_keys_pressed_50_ms_apart_record_twenty_labels(project_dir, browser):
    from playwright.sync_api import expect

    with Project.open(project_dir) as project:
        run_round(project, n=24, encoder=HashingEncoder())
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder())
    with live_server(app) as base:
        page = browser.new_page()
        page.goto(f"{base}/?token={TOKEN}")
        expect(page.locator("#progress")).to_have_text("0 of 24 labeled")
        for press in range(20):
            page.keyboard.press("1" if press % 2 == 0 else "2")
            page.wait_for_timeout(50)
        wait_until_sent(page)
        expect(page.locator("#progress")).to_have_text("20 of 24 labeled")
    with Project.open(project_dir) as project:
        web = project.db.execute("SELECT class FROM label_events WHERE source = 'web' ORDER BY event").fetchall()
        assert [row[0] for row in web] == [0, 1] * 10
        assert project.batch_progress().labeled == 20


def test_a_stale_label_in_the_browser_shows_the_conflict_and_keep_mine_records_both(project_dir, browser):
    from playwright.sync_api import expect

    with Project.open(project_dir) as project:
        run_round(project, encoder=HashingEncoder())
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder(), lease_seconds=1)
    with live_server(app) as base:
        alice = browser.new_context().new_page()
        alice.goto(f"{base}/?token={TOKEN}")
        item_id = alice.get_attribute("#item", "data-item-id")
        alice.evaluate("() => { for (let id = 0; id < 10000; id++) clearInterval(id); }")  # her page stops renewing
        alice.wait_for_timeout(1100)
        with Project.open(project_dir) as project:  # meanwhile bob labels it
            queue = AnnotationQueue(project)
            assert queue.next_item("bob-session").id == item_id
            queue.label("bob-session", project.positions_of([item_id])[item_id], 1, "bob")
        alice.keyboard.press("1")
        wait_until_sent(alice)
        expect(alice.locator("#conflict")).to_be_visible()
        expect(alice.locator("#their-annotator")).to_have_text("bob")
        expect(alice.locator("#their-label")).to_have_text("negative")
        alice.click("#keep-mine")
        alice.wait_for_url(re.compile(r"/label$"))
        alice.goto(f"{base}/label")
        alice.click("#next-batch")
        expect(alice.locator("#confirm-next-batch")).to_contain_text("still unlabeled")
    with Project.open(project_dir) as project:
        history = project.history(item_id)
        assert [e.label for e in history] == ["negative", "positive"]
        assert history[0].annotator == "bob" and history[1].annotator.startswith("web-")


def test_a_long_right_to_left_item_scrolls_inside_its_card_with_the_label_buttons_in_view(tmp_path, browser):
    from playwright.sync_api import expect

    from anchoral.store.create import DataSpec, init_project
    from tests.store.fakes import write_pool

    frame = write_pool(tmp_path / "pool.csv", 12, labeled=4)
    long_text = "مرحبا بالعالم " * 400 + "— and some English at the end."
    frame.loc[frame.index[-1], "text"] = long_text
    frame[["id", "text", "label"]].to_csv(tmp_path / "pool.csv", index=False)
    init_project(tmp_path / "proj", DataSpec(tmp_path / "pool.csv", "text", "id", "label"), ["positive", "negative"]).close()
    with Project.open(tmp_path / "proj") as project:
        long_position = project.positions_of(["doc-12"])["doc-12"]
        project.record_round(strategy="manual", requested_strategy="manual", params={}, seed=0, batch_size=1,
                             n_labeled=4, last_event=0, metrics={}, started_at="now", selected=[long_position])
    app = create_app(tmp_path / "proj", token=TOKEN, encoder=HashingEncoder())
    with live_server(app) as base:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{base}/?token={TOKEN}")
        expect(page.locator("#item-text")).to_have_attribute("dir", "auto")
        assert page.evaluate("getComputedStyle(document.getElementById('item-text')).direction") == "rtl"
        text_box = page.locator("#item-text").bounding_box()
        assert page.evaluate("document.getElementById('item-text').scrollHeight") > text_box["height"]
        for button in page.locator("button.label").all():
            box = button.bounding_box()
            assert box["y"] + box["height"] <= 700, "a label button is below the fold"


def test_an_open_page_keeps_its_item_past_the_lease_and_a_closed_tab_gives_it_back(project_dir, browser):
    with Project.open(project_dir) as project:
        run_round(project, encoder=HashingEncoder())
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder(), lease_seconds=1.5)  # renewed every 0.5 s
    with live_server(app) as base:
        page = browser.new_context().new_page()
        page.goto(f"{base}/?token={TOKEN}")
        held = page.get_attribute("#item", "data-item-id")
        page.wait_for_timeout(3000)  # twice the lease: only the page's heartbeat keeps it
        with Project.open(project_dir) as project:
            queue = AnnotationQueue(project, lease_seconds=1.5)
            assert [item.id for item, _, _ in queue.reservations()] == [held]
            assert queue.next_item("someone-else").id != held
            queue.release("someone-else")
        page.close(run_before_unload=True)
        def lease_rows():  # expired leases stay in the table until someone asks for an item: only a release deletes
            with Project.open(project_dir) as project:
                return project.db.execute("SELECT count(*) FROM leases").fetchone()[0]

        deadline = time.time() + 10
        while lease_rows() and time.time() < deadline:  # the pagehide beacon arrives shortly after the tab is gone
            time.sleep(0.1)
        assert lease_rows() == 0
