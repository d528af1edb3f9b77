"""A real browser (Debian's Chromium through Playwright) clicks through every tab and saves screenshots.

Needs /usr/bin/chromium (``apt-get install chromium``; .ci/run installs it) or $DP_CHROMIUM. Set
$DP_SCREENSHOTS_DIR to keep the screenshots (docs/screenshots holds the ones README.md and docs/app.md show).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a browser and a session run: minutes

CHROMIUM = os.environ.get("DP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# How long to wait for the slow steps (a session run's what-if strips, a run, the decoder's first load): generous, so
# that a loaded 2-core machine still passes, since this is not a speed test (benchmarks.app_speed is). Every wait
# ends on the page's own signal, not on the clock.
SLOW_MS = 360_000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]


@pytest.fixture(scope="module")
def page(app_url):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(app_url)
        page.get_by_text("Dynamic Prompting Lab").first.wait_for()
        yield page
        browser.close()


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DP_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def no_error_notice(page) -> None:
    """No error badge or toast on the page, and none of Gradio's untranslated words."""
    body = page.inner_text("body")
    assert page.get_by_text("Error", exact=True).count() == 0 and "common." not in body, body[:2000]


def test_the_first_steps_lead_to_an_example_where_the_place_matters_and_to_the_verdict(page, tmp_path):
    page.get_by_role("button", name="Show me an example (opens Compare)").wait_for()  # the page has drawn its tab
    page.get_by_text("A soft prompt is a few learned vectors").wait_for()
    body = page.inner_text("body")
    assert "Prompt tuning (fixed): the same place for every input" in body  # named as Compare names it
    assert "a learned place, which may differ from input to input" in body
    assert page.locator(".dp-token[data-kind='prompt-after']").count() > 0  # step 1's picture: DP's own place
    screenshot(page, "start", tmp_path)

    page.get_by_role("button", name="Show me an example (opens Compare)").click()  # step 2: Compare, set up and run
    page.locator(".dp-what-if").first.wait_for(timeout=SLOW_MS)
    page.get_by_text(re.compile(r"At \d+ of \d+ places the answer changes from DP's")).wait_for(timeout=SLOW_MS)
    body = page.inner_text("body")
    # the visitor's task (cb) has no such example: the page says which task it shows instead
    assert "cb has no dev item where DP's place flips a clear answer" in body
    assert "prompt tuning (fixed), ready-trained" in body and "DP input" in body  # like for like, named alike
    assert page.locator(".dp-meter").count() >= 1 and "No preference: every candidate equally likely" in body
    assert page.locator(".dp-token[data-kind='prompt-after']").count() > 0  # input DP: tokens after the input
    assert "Gold label of dev example" in body and "On an encoder every token reads every other" in body
    no_error_notice(page)
    screenshot(page, "compare", tmp_path)

    page.get_by_role("tab", name="Start here").click()
    page.get_by_role("button", name="Score both on the dev set (opens Explore)").click()  # step 3: the same pair
    page.get_by_text(re.compile(r"^On the first \d+ dev items:$")).first.wait_for(timeout=SLOW_MS)
    body = page.inner_text("body")
    assert re.search(r"cannot tell DP from the fixed prompt|DP scores \d\.\d{3} (above|below) the fixed prompt", body)
    assert "Where the methods disagree" in body and "How decided DP is" in body and "(no preference: " in body
    page.wait_for_timeout(2000)  # the plots draw after the last update
    no_error_notice(page)
    screenshot(page, "explore", tmp_path)


def test_the_decoder_lesson_is_reachable_from_start_and_by_hand_with_no_dead_end(page, tmp_path):
    page.reload()
    page.get_by_role("button", name="Where the place matters most (opens Compare)").wait_for()
    assert "On a decoder each token reads only what comes before it" in page.inner_text("body")
    page.get_by_role("button", name="Where the place matters most (opens Compare)").click()  # click 1
    page.get_by_text(re.compile(r"At \d+ of \d+ places the answer changes from DP's")).wait_for(timeout=SLOW_MS)
    body = page.inner_text("body")
    assert "ready-trained on smollm2-135m" in body and "DP input" in body
    assert "On a decoder each token reads only what comes before it" in body  # where the student looks
    assert "A tie" not in body.split("Dynamic Prompting")[-1]  # DP's own answer is clear
    no_error_notice(page)
    screenshot(page, "compare_decoder", tmp_path)
    page.get_by_role("tab", name="Explore").click()  # click 2: the decoder carried over, input DP offered
    page.get_by_role("button", name="Evaluate on the dev set").click()  # click 3
    page.get_by_text(re.compile(r"^On the first \d+ dev items:$")).first.wait_for(timeout=SLOW_MS)
    body = page.inner_text("body")
    assert "DP input: position + length + pool, ready-trained on smollm2-135m" in body
    scored = re.search(r"DP input: position \+ length \+ pool, ready-trained on smollm2-135m\s+(\d\.\d{3})\s+"
                       r"(\d\.\d{3}) – (\d\.\d{3})\s+300", body)  # the decoder's score with its interval
    assert scored and float(scored[2]) <= float(scored[1]) <= float(scored[3])
    page.wait_for_timeout(2000)
    no_error_notice(page)
    screenshot(page, "explore_decoder", tmp_path)

    # By hand, as a student told "go see on WiC" would: task, backbone, Compare, the place-matters button
    page.reload()
    page.get_by_label("SuperGLUE task").click()
    page.get_by_role("option", name="wic", exact=True).click()
    page.get_by_label("Backbone").click()
    page.get_by_role("option", name=re.compile("SmolLM2")).click()
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("radio", name="deep").wait_for(state="detached")  # no deep DP on this backbone: not offered
    page.get_by_role("button", name="Where the place changes the answer").click()
    page.get_by_text(re.compile(r"At \d+ of \d+ places the answer changes from DP's")).wait_for(timeout=SLOW_MS)
    no_error_notice(page)


def test_train_then_compare_the_session_s_run_then_learn(page, tmp_path):
    page.reload()  # the default backbone again
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("SuperGLUE task").click()
    page.get_by_role("option", name="cb", exact=True).click()
    page.get_by_text("What a 60 s run can show on cb").wait_for()  # from the committed short-run measurements
    page.get_by_label("Few-shot k (0: the whole train set)").fill("32")
    budget = page.locator("input[type='number'][aria-label*='Budget']")
    budget.fill("15")
    budget.press("Enter")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Done. Open Compare").wait_for(timeout=SLOW_MS)
    assert page.get_by_text("Best dev score of each run").is_visible()
    page.wait_for_timeout(2000)  # the plots redraw after the last update
    assert "DP deep" in page.locator(".vega-embed").first.inner_text()  # both methods' curves, not just the first
    assert "Where DP puts the prompt on the dev set" in page.inner_text("body")
    screenshot(page, "train", tmp_path)

    page.get_by_role("tab", name="Compare").click()
    page.get_by_label("deep", exact=True).first.check()
    page.get_by_label("like for like: P-tuning v2 (fixed)", exact=True).first.check()
    page.get_by_label("Dev example #").fill("0")
    page.get_by_role("button", name="Pick this dev example").click()
    page.get_by_label("Premise").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.length > 20)")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text(re.compile(r"trained in this session")).first.wait_for(timeout=SLOW_MS)
    page.locator(".dp-what-if").first.wait_for(timeout=SLOW_MS)  # computed: this run has no analysis yet
    body = page.inner_text("body")
    assert "positions start at" in body and page.locator(".dp-token[data-kind='prompt-deep']").count() == 2
    assert re.search(r"at every place|At \d+ of \d+ places", body)
    # deep DP's place in one count: the reading's vectors after the input are the square the strip marks "DP"
    after = re.search(r"Its place: (\d+) vectors? after the input", body)[1]
    marked = page.locator(".dp-what-if").first.locator(".dp-cell", has_text="▲ DP")
    assert marked.count() == 1 and marked.first.inner_text().split()[0] == after
    no_error_notice(page)
    screenshot(page, "compare_deep", tmp_path)

    page.get_by_role("tab", name="Learn").click()
    page.get_by_text("Play with the choice").wait_for()
    page.get_by_role("button", name="Draw again").click()
    page.wait_for_timeout(1000)
    body = page.inner_text("body")
    assert "hard draws follow the chances" in body and "What a prompt's place means in each kind of model" in body
    assert "the soft draw shown puts" in body  # the number under the soft draw's own bar
    assert page.locator("img").count() >= 2  # the DP figure and the per-family attention grids
    screenshot(page, "learn", tmp_path)


def test_your_own_data_uploads_trains_and_answers_a_typed_text(page, tmp_path):
    import csv

    path = tmp_path / "reviews.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "label"])
        for i in range(60):
            writer.writerow([f"The film was {['awful', 'great'][i % 2]} and {['dull', 'superb'][i % 2]}.",
                             ["bad", "good"][i % 2]])
    page.get_by_role("tab", name="Your data").click()
    page.get_by_text("Up to 2,000 rows").wait_for()
    with page.expect_file_chooser() as chooser:  # as a person does: click the drop zone, pick the file
        page.get_by_text("Click to Upload").last.click()
    chooser.value.set_files(str(path))
    page.get_by_text("60 rows. Check the columns, then train.").wait_for(timeout=SLOW_MS)
    page.get_by_role("button", name="Train both methods").click()
    page.get_by_text("DP − fixed (paired, same items)").wait_for(timeout=SLOW_MS)  # both trained and scored
    page.get_by_label("Your text").fill("The film was great and superb.")
    page.get_by_role("button", name="Compare on this text").click()
    page.get_by_text("where DP put its prompt").wait_for(timeout=SLOW_MS)
    body = page.inner_text("body")
    assert "P-tuning v2 (fixed)" in body and "DP deep" in body and "prompt vectors ×" in body
    screenshot(page, "your_data", tmp_path)

    hostile = tmp_path / "hostile.csv"  # a file's text is shown as text, never run
    hostile.write_text('review,label\n"<img src=x onerror=alert(1)> awful",bad\n"<b>great</b>",good\n' +
                       "".join(f"A film {i},{'good' if i % 2 else 'bad'}\n" for i in range(20)))
    page.locator("button[aria-label='Clear']").first.click()
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click to Upload").last.click()
    chooser.value.set_files(str(hostile))
    page.get_by_text("22 rows. Check the columns, then train.").wait_for(timeout=SLOW_MS)
    assert page.locator("img[src='x']").count() == 0 and page.locator("td b").count() == 0
    assert "<img src=x onerror=alert(1)> awful" in page.inner_text("body")
