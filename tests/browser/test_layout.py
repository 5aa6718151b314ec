"""Layout and accessibility defects seen in a real browser (issue 10: defects 9 and 10)."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from tests.browser.conftest import DESKTOP, PHONE, check_page, sign_up


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    def parse(css: str) -> tuple[float, ...]:
        return tuple(float(v) for v in re.findall(r"[\d.]+", css))

    a, b = _luminance(parse(first)), _luminance(parse(second))
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def header_height(page: Page) -> float:
    box = page.locator("header.top").bounding_box()
    assert box is not None
    return box["height"]


def test_start_page(page: Page) -> None:
    page.goto("/")
    assert page.title() == "Sign in · Status"
    assert "post short updates" in page.locator(".lead").inner_text()
    check_page(page, "start")


def test_a_long_name_without_spaces_fits_a_phone(page: Page) -> None:
    """Defect 9: a 100-character name made the phone layout 1,511 px wide."""
    sign_up(page, "W" * 100)
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    check_page(page, "home-long-name")


def test_input_borders_have_3_to_1_contrast(page: Page) -> None:
    """Defect 10: input borders had 1.57:1 against the white card (WCAG 1.4.11: 3:1)."""
    page.goto("/")
    for field in page.locator("input:not([type=hidden])").all():
        border = field.evaluate("el => getComputedStyle(el).borderTopColor")
        behind = field.evaluate("el => getComputedStyle(el.closest('.card')).backgroundColor")
        assert contrast(border, behind) >= 3, (border, behind)


def test_post_button_does_not_touch_the_text_box(page: Page) -> None:
    """Defect 10: the Post button sat flush against the text box."""
    sign_up(page, "Bo")
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        box = page.locator("#status").bounding_box()
        button = page.get_by_role("button", name="Post").bounding_box()
        assert box is not None and button is not None
        assert button["y"] - (box["y"] + box["height"]) >= 8, (size, box, button)


def test_header_keeps_its_height_when_signed_in(page: Page) -> None:
    """Defect 10: the header grew when the sign-out button appeared."""
    heights = {}
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.goto("/")
        heights[("out", size["width"])] = header_height(page)
    sign_up(page, "Cy")
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        heights[("in", size["width"])] = header_height(page)
    for size in (DESKTOP, PHONE):
        assert heights[("out", size["width"])] == heights[("in", size["width"])], heights
