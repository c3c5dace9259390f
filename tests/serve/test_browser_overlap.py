"""In headless Chromium (Playwright, Debian's chromium): two invited labelers label a whole
batch with overlap side by side, through their own links; the owner sees their kappa on
the dashboard and resolves their one disagreement on the review page; training then uses
the resolution. Set ANCHORAL_SCREENSHOT_DIR to keep screenshots of the dashboard and review page."""

import os
from pathlib import Path

from anchoral.serve import create_app
from anchoral.store import Project
from anchoral.store.exchange import export_rows
from anchoral.store.review import agreement_report
from anchoral.store.rounds import run_round
from tests.serve.conftest import TOKEN, live_server
from tests.serve.test_browser_team import browser, wait_until_sent  # noqa: F401 - the fixture
from tests.store.fakes import HashingEncoder

KEYS = {"positive": "1", "negative": "2"}
# Labels of the three overlap items in the order they were selected: they agree on the 2nd and 3rd.
# (alice, bob) = (positive, negative), (negative, negative), (positive, positive): p_o = 2/3;
# alice positive 2/3, bob positive 1/3: p_e = 2/3 * 1/3 + 1/3 * 2/3 = 4/9; kappa = (2/3 - 4/9) / (5/9) = 0.4.
OVERLAP_PLAN = {"alice": ["positive", "negative", "positive"], "bob": ["negative", "negative", "positive"]}


def test_two_labelers_and_the_owner_run_a_batch_with_overlap_and_resolve_a_disagreement(project_dir, truth, browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with Project.open(project_dir) as project:
        tokens = {name: project.invite(name) for name in ("alice", "bob")}
        project.set_overlap(0.5, 2)
        batch = run_round(project, n=6, encoder=HashingEncoder()).selected_ids
        overlap = {row[0] for row in project.db.execute("SELECT item FROM overlap_items")}
        overlap_ids = [item.id for item in project.batch() if item.position in overlap]
    assert len(overlap_ids) == 3

    def label_for(name: str, item_id: str) -> str:
        return OVERLAP_PLAN[name][overlap_ids.index(item_id)] if item_id in overlap_ids else truth[item_id]

    shots = Path(os.environ.get("ANCHORAL_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder())
    with live_server(app) as base:
        pages = {}
        for name in ("alice", "bob"):
            pages[name] = browser.new_context().new_page()
            pages[name].goto(f"{base}/?token={tokens[name]}")
        shown = {"alice": [], "bob": []}
        while any(page.locator("#item").count() for page in pages.values()):
            for name, page in pages.items():  # in turns: both hold items at the same time
                if not page.locator("#item").count():
                    continue
                item_id = page.get_attribute("#item", "data-item-id")
                if item_id in overlap_ids:
                    expect(page.locator("#overlap-note")).to_be_visible()
                shown[name].append(item_id)
                page.keyboard.press(KEYS[label_for(name, item_id)])
                wait_until_sent(page)
        for name, page in pages.items():
            page.reload()
            expect(page.locator("#batch-complete")).to_be_visible()
            expect(page.locator("#no-item")).to_contain_text("the labelers disagree on 1 of them")
            expect(page.locator("#nav-review")).to_have_count(0)  # only the owner reviews
        assert all(len(seen) == len(set(seen)) for seen in shown.values())  # never an item twice to one labeler
        assert set(shown["alice"]) & set(shown["bob"]) == set(overlap_ids)
        assert set(shown["alice"]) | set(shown["bob"]) == set(batch)

        owner = browser.new_context().new_page()
        owner.goto(f"{base}/?token={TOKEN}")
        expect(owner.locator("#review-count")).to_have_text("(1)")
        owner.goto(f"{base}/dashboard")
        expect(owner.locator("#kappa-statistic")).to_have_text("Cohen's kappa")
        expect(owner.locator("#kappa")).to_have_text("0.400")
        expect(owner.locator("#percent-agreement")).to_have_text("66.7%")
        expect(owner.locator("#review-counts")).to_contain_text("1 disagreement(s) to resolve")
        owner.screenshot(path=str(shots / "overlap-1-dashboard.png"), full_page=True)
        owner.click("#nav-review")
        disputed = owner.locator(".review-item")
        expect(disputed).to_have_count(1)
        expect(disputed).to_have_attribute("data-item-id", overlap_ids[0])
        expect(disputed.locator(".opinions")).to_contain_text("alice: positive")
        expect(disputed.locator(".opinions")).to_contain_text("bob: negative")
        owner.screenshot(path=str(shots / "overlap-2-review.png"), full_page=True)
        disputed.locator('button[data-label="negative"]').click()
        expect(owner.locator("#nothing-to-review")).to_be_visible()
        expect(owner.locator("#resolved .resolution")).to_have_text("negative")
        expect(owner.locator("#review-count")).to_have_count(0)
        owner.goto(f"{base}/dashboard")
        expect(owner.locator("#review-counts")).to_contain_text("0 disagreement(s) to resolve, 1 resolved, 2 agreed")
        expect(owner.locator("#kappa")).to_have_text("0.400")  # the resolution does not change what the labelers gave

    with Project.open(project_dir) as project:
        positions, classes, _ = project.current_labels()
        current = {project.item(int(p)).id: project.labels[int(c)] for p, c in zip(positions, classes)}
        assert {item_id: current[item_id] for item_id in overlap_ids} == dict(zip(overlap_ids, ["negative", "negative", "positive"]))
        assert all(current[item_id] == truth[item_id] for item_id in batch if item_id not in overlap_ids)
        assert project.batch_progress().labeled == 6
        history = project.history(overlap_ids[0])
        assert sorted((e.annotator, e.label, e.source) for e in history if e.source == "web") == [
            ("alice", "positive", "web"), ("bob", "negative", "web"),
        ]
        assert history[-1].source == "review" and history[-1].label == "negative" and not history[-1].superseded
        assert abs(agreement_report(project)["kappa"]["value"] - 0.4) < 1e-12
        exported = {row["id"]: row["label"] for row in export_rows(project)}
        assert exported[overlap_ids[0]] == "negative"
