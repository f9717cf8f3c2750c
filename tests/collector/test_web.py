"""The collector's web page in a real browser: Debian's headless Chromium, driven by
Selenium through chromedriver, against a real collector on loopback holding the
seeded database (tests/collector/seed.py). Staff log in with the admin token, open
the report for a week, mark a host handled and see the week's numbers change. A
screenshot of the page is kept in build/test-artifacts/."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from sensor.collector.forms import LABELS
from sensor.collector.store import Store
from tests.collector.harness import ROOT, Collector
from tests.collector.seed import BAD_IP, FINANCE, STATE_GROUP, TRADE, seed

ARTIFACTS = ROOT / "build" / "test-artifacts"
HANDLED_COLUMN = 6      # STT, Đơn vị, Triển khai, Thiết bị, covered, found, handled


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("web") / "collector")
    seed(Store(collector.database, UTC), mark_handled=False)
    yield collector.start()
    collector.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    for program in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(program).exists():
            pytest.fail(f"needs {program} (Debian's chromium and chromium-driver; "
                        f".ci/run installs them)")
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1800", "--lang=vi"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def page_kept_on_failure(request: pytest.FixtureRequest,
                         browser: webdriver.Chrome) -> Iterator[None]:
    """A failed browser test leaves the page it ended on (screenshot and HTML) in
    build/test-artifacts/, so a failure seen once in CI can be read afterwards."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = f"failed-{request.node.name}"
        browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        (ARTIFACTS / f"{name}.html").write_text(
            f"<!-- {browser.current_url} -->\n{browser.page_source}")


def click_and_wait(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click what loads a new page; wait until a new document has replaced the old one
    and has loaded. The old document is told apart by a mark on its window, which the
    new one's window does not have: while the page is being replaced, an element of the
    old one is not always reported stale (chromedriver can answer "Node with given id
    does not belong to the document", an unknown error), so the wait asks the window
    and asks again on any such error."""
    browser.execute_script("window.madocOldPage = true")
    element.click()
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return !window.madocOldPage && document.readyState === 'complete'"))


def finance_row(browser: webdriver.Chrome) -> list[str]:
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-key="{FINANCE}"]')
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def test_staff_log_in_open_a_week_mark_a_host_and_see_the_numbers_change(
        site: Collector, browser: webdriver.Chrome) -> None:
    browser.get(site.url + "/")
    assert browser.current_url.endswith("/ui/login")
    browser.find_element(By.ID, "token").send_keys("madoc_wrong")
    click_and_wait(browser, browser.find_element(By.ID, "login"))
    assert "Mã truy cập không đúng" in browser.page_source
    browser.find_element(By.ID, "token").send_keys(site.admin_token)
    click_and_wait(browser, browser.find_element(By.ID, "login"))
    assert browser.current_url.endswith("/ui/")

    browser.find_element(By.ID, "week").send_keys("2022-W37")
    click_and_wait(browser, browser.find_element(By.ID, "show"))
    assert "12/09/2022" in browser.find_element(By.ID, "period").text
    assert browser.find_element(By.TAG_NAME, "h1").text == LABELS["vi"]["title"]
    before = finance_row(browser)
    assert before[4:7] == ["4", "3", "1"]        # covered, found, handled (A4: quiet period)
    block = browser.find_element(By.CSS_SELECTOR, f'tr.block[data-key="{STATE_GROUP}"]')
    assert [c.text for c in block.find_elements(By.TAG_NAME, "td")][2:7] == [
        "2/20", "3/4", "5", "4", "1"]               # the block's heading row: its subtotal
    assert "còn 3 máy tính đang được xử lý" in browser.find_element(By.ID, "assessment").text
    charts = browser.find_elements(By.CSS_SELECTOR, "#charts svg")
    assert [c.get_attribute("id") for c in charts] == ["chart-hits", "chart-computers",
                                                       "chart-units"]
    downloads = browser.find_elements(By.CSS_SELECTOR, ".downloads a")
    assert [a.text for a in downloads] == ["MD", "CSV", "JSON", "DOCX", "XLSX"]

    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Máy tính"))
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-ip="10.0.0.13"]')
    assert "14/09/2022 17:00" in row.text     # its last hit, 10:00 UTC, in the page's zone
    click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "a.host"))
    mark_handled(browser, "quét bằng công cụ của NCSC, đã gỡ mã độc", "file:admin.token")

    browser.get(site.url + "/ui/?week=2022-W37")
    after = finance_row(browser)
    assert after[4:7] == ["4", "3", "2"]
    assert after[HANDLED_COLUMN] == "2"
    assert "còn 2 máy tính đang được xử lý" in browser.find_element(By.ID, "assessment").text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "report-2022-W37.png"))

    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Thiết bị giám sát"))
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-key="dl-gw1"]').text.count(
        "chưa bao giờ") == 1


def mark_handled(browser: webdriver.Chrome, note: str, by: str) -> None:
    """On a computer's page: its evidence is there; mark it handled with a note, and
    see the status and the audit log change."""
    assert browser.find_element(By.ID, "status").text == "Chưa xử lý"
    assert browser.find_element(By.ID, "indicators").find_elements(By.TAG_NAME, "td")
    assert "kết nối đầu tiên" in browser.find_element(By.ID, "timeline").text
    browser.find_element(By.ID, "note").send_keys(note)
    click_and_wait(browser, browser.find_element(By.ID, "mark"))
    assert browser.find_element(By.ID, "status").text == "Đã xử lý"
    audit = browser.find_element(By.ID, "audit").text
    assert note in audit and by in audit
    assert "được đánh dấu đã xử lý" in browser.find_element(By.ID, "timeline").text


def log_in(site: Collector, browser: webdriver.Chrome, token: str) -> None:
    browser.delete_all_cookies()
    browser.get(site.url + "/ui/login")
    browser.find_element(By.ID, "token").send_keys(token)
    click_and_wait(browser, browser.find_element(By.ID, "login"))
    assert browser.current_url.endswith("/ui/")


def listed_ips(browser: webdriver.Chrome) -> set[str]:
    return {row.get_attribute("data-ip")
            for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-ip]")}


def test_downloads_come_from_the_page(site: Collector, browser: webdriver.Chrome,
                                      tmp_path: Path) -> None:
    browser.get(site.url + "/ui/?week=2022-W37")
    link = browser.find_element(By.LINK_TEXT, "CSV").get_attribute("href")
    cookie = browser.get_cookie("madoc_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    request = urllib.request.Request(link, headers={
        "Cookie": f"madoc_token={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert "madoc-report-2022-W37.csv" in answer.headers["Content-Disposition"]
        assert FINANCE in answer.read().decode("utf-8-sig")


def test_the_page_needs_a_login_and_refuses_cross_site_forms(site: Collector) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as found:
        opener.open(site.url + "/ui/hosts", timeout=10)
    assert found.value.code == 302 and found.value.headers["Location"] == "/ui/login"
    sensor = site.sensor_token("web-probe")
    for token in (sensor, "madoc_nothing"):
        request = urllib.request.Request(site.url + "/ui/sensors",
                                         headers={"Cookie": f"madoc_token={token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(request, timeout=10)
        assert refused.value.code == 302
    forged = urllib.request.Request(
        site.url + "/ui/hosts/1/handled", data=b"", method="POST",
        headers={"Cookie": f"madoc_token={site.admin_token}",
                 "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(forged, timeout=10)
    assert refused.value.code == 403


def test_a_unit_account_handles_its_own_computers(site: Collector, browser: webdriver.Chrome,
                                                  tmp_path: Path) -> None:
    """Sở Công Thương's IT staff log in with their unit's account, see only their unit's
    computer, open it, read the evidence, mark it handled with a note; the report's
    handled count and the audit log change. The province admin sees every unit."""
    token = site.cli("tokens", "add", "--admin", "it-congthuong", "--unit", TRADE).stdout
    log_in(site, browser, token.strip())
    assert TRADE in browser.find_element(By.ID, "scope").text
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-key="{FINANCE}"]')

    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Máy tính"))
    assert listed_ips(browser) == {"10.1.0.21"}
    save(browser, "hosts-unit-account")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, 'tr[data-ip="10.1.0.21"] a.host'))
    evidence = browser.find_element(By.ID, "indicators").text
    assert BAD_IP in evidence and "flow.dest_ip" in evidence
    save(browser, "host-evidence")
    mark_handled(browser, "cài lại hệ điều hành", "it-congthuong")

    browser.get(site.url + "/ui/?week=2022-W37")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-key="{TRADE}"]')
    assert [c.text for c in row.find_elements(By.TAG_NAME, "td")][4:7] == ["1", "1", "1"]
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-key="{FINANCE}"]')
    click_and_wait(browser, row.find_element(By.LINK_TEXT, TRADE))
    assert browser.find_element(By.TAG_NAME, "h1").text == TRADE
    assert "12/09/2022" in browser.find_element(By.ID, "period").text
    assert browser.find_element(By.ID, "infected").text.endswith(": 0")
    save(browser, "unit-page")
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    browser.get(f"{site.url}/ui/?from={today}&to={today}")
    link = browser.find_element(By.LINK_TEXT, "MD").get_attribute("href")
    request = urllib.request.Request(link, headers={
        "Cookie": f"madoc_token={browser.get_cookie('madoc_token')['value']}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        annex = answer.read().decode()
    assert "Máy tính được đánh dấu đã xử lý trong kỳ" in annex
    assert "cài lại hệ điều hành" in annex and "it-congthuong" in annex

    log_in(site, browser, site.admin_token)
    browser.get(site.url + "/ui/hosts")
    assert {"10.0.0.13", "10.1.0.21"} <= listed_ips(browser)


def save(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
