import io
import os
import re

import pytest
from PIL import Image

from playground.generations.models import Task

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED_PATH = "/play/gemini-3-pro-image-preview-official"


def test_the_seed_form_follows_the_schema_and_its_hints(page):
    page.goto(SEED_PATH)
    prompt = page.locator("textarea[name=prompt]")
    assert prompt.get_attribute("rows") == "6"
    assert prompt.get_attribute("required") is not None
    assert page.locator("select[name=size]").input_value() == "1:1"
    assert page.locator("select[name=resolution]").input_value() == "1K"
    n = page.locator("input[name=n]")
    assert (n.get_attribute("min"), n.get_attribute("max"), n.input_value()) == ("1", "4", "1")
    advanced = page.locator("details.advanced")
    assert advanced.get_attribute("open") is None
    assert not page.get_by_text("Reference images", exact=True).is_visible()
    advanced.locator("> summary").click()
    assert advanced.get_by_text("Reference images", exact=True).is_visible()
    assert advanced.get_by_text("Mask image", exact=True).is_visible()
    upload = advanced.locator("input[type=file][name=image_urls__file]")
    assert upload.get_attribute("accept") == "image/*"
    assert upload.get_attribute("multiple") is not None


def test_generate_shows_the_status_live_then_the_images_and_stops_polling(page):
    page.goto(SEED_PATH)
    page.evaluate("window.noReload = true")
    page.fill("textarea[name=prompt]", "A red fox crossing fresh snow at dawn")
    page.select_option("select[name=size]", "16:9")
    page.fill("input[name=n]", "2")
    polls = []
    page.on("request", lambda r: polls.append(r.url) if re.search(r"/tasks/task_\w+$", r.url) else None)
    page.click("button.generate")
    page.wait_for_url(re.compile(r"/tasks/task_\w+$"))
    task_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector(f"#task-status:has(a[href$='{task_id}']) .badge[data-status=succeeded]")
    assert page.evaluate("window.noReload") is True, "the page reloaded"
    images = page.locator("#task-status .gallery img")
    assert images.count() == 2
    wait_until(page, "[...document.querySelectorAll('#task-status .gallery img')].every(i => i.naturalWidth)")
    assert page.evaluate("document.querySelector('#task-status .gallery img').naturalWidth") == 1024
    assert polls, "the panel never polled"
    seen = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == seen, "polling went on after the task ended"

    page.reload()
    assert page.locator("#task-status .badge[data-status=succeeded]").is_visible()
    assert page.locator("#task-status .gallery img").count() == 2
    assert "curl -X POST" in page.locator("#snippet-curl").inner_text()

    page.get_by_role("link", name="Re-run").click()
    assert page.locator("textarea[name=prompt]").input_value() == "A red fox crossing fresh snow at dawn"
    assert page.locator("select[name=size]").input_value() == "16:9"
    assert page.locator("input[name=n]").input_value() == "2"


def test_an_empty_prompt_is_stopped_by_the_browser_and_a_mask_alone_by_the_server(page):
    page.goto(SEED_PATH)
    page.click("button.generate")
    assert page.evaluate("document.querySelector('textarea[name=prompt]').validationMessage")
    assert Task.objects.count() == 0

    page.fill("textarea[name=prompt]", "masked")
    page.locator("details.advanced > summary").click()
    page.locator("#field-mask_url details.paste summary").click()
    page.fill("input[name=mask_url]", "https://example.com/mask.png")
    page.click("button.generate")
    error = page.locator("#field-mask_url .error")
    error.wait_for()
    assert "reference images" in error.inner_text()
    assert page.locator("details.advanced").get_attribute("open") is not None
    assert page.locator("textarea[name=prompt]").input_value() == "masked"  # nothing lost
    assert Task.objects.count() == 0


def test_uploading_a_png_runs_image_to_image(page, tmp_path):
    picture = tmp_path / "reference.png"
    Image.new("RGB", (300, 200), (220, 40, 40)).save(picture)
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "a red square, reimagined")
    page.select_option("select[name=size]", "auto")
    page.locator("details.advanced > summary").click()
    page.set_input_files("input[name=image_urls__file]", str(picture))
    assert page.locator("[data-previews] img").count() == 1
    page.click("button.generate")
    page.wait_for_url(re.compile(r"/tasks/task_\w+$"))
    page.wait_for_selector("#task-status .badge[data-status=succeeded]")
    task = Task.objects.get(pk=page.url.rsplit("/", 1)[-1])
    [reference] = task.input["image_urls"]  # stored as an input file: the worker read it from storage
    assert re.fullmatch(r"http://[^/]+/inputs/in_\w+/reference\.png", reference)
    image = task.output["images"][0]
    assert image["width"] * 2 == image["height"] * 3  # the reference's 3:2, not the default 1:1
    shown = page.locator("#task-status .gallery img").first
    response = page.request.get(shown.get_attribute("src"))
    assert Image.open(io.BytesIO(response.body())).size == (image["width"], image["height"])
    assert page.request.get(reference).body() == picture.read_bytes()  # hers to read
    page.reload()  # the task page: the form holds the reference, to run it again
    assert page.locator("textarea[name=image_urls]").input_value() == reference


def test_files_too_large_are_refused_beside_their_field_before_anything_is_sent(page, tmp_path, settings):
    settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES = 60_000
    settings.PLAYGROUND_MAX_BODY_BYTES = 100_000
    pictures = []
    for index in range(3):  # noise: about 50 KB each as PNG, under the per-file limit
        pictures.append(tmp_path / f"noise-{index}.png")
        Image.frombytes("RGB", (130, 130), os.urandom(130 * 130 * 3)).save(pictures[-1])
    assert all(45_000 < picture.stat().st_size < 60_000 for picture in pictures)
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(big)
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "too much")
    page.locator("details.advanced > summary").click()
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.set_input_files("input[name=image_urls__file]", str(big))  # one file over the limit
    page.click("button.generate")
    error = page.locator("#field-image_urls [data-size-error]")
    error.wait_for()
    assert error.inner_text().startswith("big.png is ")
    assert "each file can be at most 0.1 MB" in error.inner_text()

    page.set_input_files("input[name=image_urls__file]", [str(p) for p in pictures])  # together too much
    page.click("button.generate")
    wait_until(
        page, "document.querySelector('#field-image_urls [data-size-error]').innerText.includes('in all')"
    )
    assert page.locator("#field-image_urls [data-size-error]").count() == 1
    assert "one Generate can send at most 0.1 MB in all" in error.inner_text()
    assert posts == [] and Task.objects.count() == 0

    # Past the page's own check (an old tab, a changed limit), the server's 413 shows in the form.
    page.evaluate("document.getElementById('run-form').dataset.maxBody = '0'")
    page.click("button.generate")
    refusal = page.locator("#run-form [data-body-error]")
    refusal.wait_for()
    assert "at most 0.1 MB can be sent at once" in refusal.inner_text()
    assert page.locator("textarea[name=prompt]").input_value() == "too much"  # nothing lost
    assert Task.objects.count() == 0


def test_an_array_of_objects_is_a_set_of_rows_to_add_and_remove(page):
    page.goto("/play/wan2-7-r2v")
    rows = page.locator("[data-repeat-row]:visible")
    assert rows.count() == 1
    page.click("[data-repeat-add]")
    assert rows.count() == 2
    rows.nth(1).get_by_role("button", name="Remove").click()
    assert rows.count() == 1
