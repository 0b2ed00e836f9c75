#!/usr/bin/env python3
"""The status page (GET /) in a real headless Chromium, driven by Selenium.

Against a running bridge whose Redis holds some tasks (scripts/lib/page-test seeds them), it checks:
(a) the page lists the stored tasks, one row `[data-task-id]` each, with a progress bar
    (`role="progressbar"`, `aria-valuenow`, `aria-valuemin`, `aria-valuemax`);
(b) an update sent on the Redis request stream (XADD) moves that task's bar with no reload, and a
    task created on the stream appears at the top; the bridge must stream (Server-Sent Events)
    and the page must be on that stream, not polling;
(c) a status filter narrows the rows to the tasks the API lists for it;
(d) the browser's console has no SEVERE entry (CSP violations, script errors, failed loads);
(e) a screenshot (PNG) of the list is saved, and one of the detail view beside it;
and that the detail view opens on a click, shows the task's JSON and closes with Escape.

Exits 0 when every check passes, 1 with the reason otherwise. Every wait is bounded.

    page_test.py --base http://127.0.0.1:PORT --redis-url redis://127.0.0.1:PORT/0 \
        [--prefix taskstatus] [--screenshot .build/status-page.png]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT_SECONDS = 10
PAGE_SIZE = 25  # the page's default

ROWS_SCRIPT = """
return Array.from(document.querySelectorAll('[data-task-id]')).map(function (row) {
  var bar = row.querySelector('[role="progressbar"]');
  return {
    id: row.getAttribute('data-task-id'),
    status: row.getAttribute('data-status'),
    now: bar ? bar.getAttribute('aria-valuenow') : null,
    min: bar ? bar.getAttribute('aria-valuemin') : null,
    max: bar ? bar.getAttribute('aria-valuemax') : null,
  };
});
"""


class Failure(Exception):
    pass


def api_list(base, filters=None, limit=PAGE_SIZE):
    """The list API's first page (newest first) and its X-Total-Count."""
    query = {"limit": str(limit), "offset": "0", "count": "true", "sorters": "-created"}
    if filters:
        query["filters"] = filters
    request = urllib.request.Request(
        base + "/v2026/task-status?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote),
        headers={"X-SailPoint-Experimental": "true"},
    )
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return [task["id"] for task in json.load(response)], int(response.headers.get("X-Total-Count", "-1"))


def server_streams(base):
    """Whether the bridge answers the list URL with Server-Sent Events (reads the head only)."""
    request = urllib.request.Request(
        base + "/v2026/task-status",
        headers={"X-SailPoint-Experimental": "true", "Accept": "text/event-stream"},
    )
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return response.headers.get("Content-Type", "").lower().startswith("text/event-stream")


def xadd(redis_url, prefix, *fields):
    result = subprocess.run(
        ["redis-cli", "-u", redis_url, "XADD", prefix + ":requests", "*", *fields],
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    if result.returncode != 0 or "ERR" in result.stdout:
        raise Failure("XADD on %s:requests failed: %s%s" % (prefix, result.stdout, result.stderr))


def wait_for(driver, condition, what):
    try:
        return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        raise Failure("timed out after %d s waiting for %s" % (WAIT_SECONDS, what)) from None


def rows(driver):
    return driver.execute_script(ROWS_SCRIPT)


def row_ids(driver):
    return [row["id"] for row in rows(driver)]


def check_not_reloaded(driver, what):
    if driver.execute_script("return window.__pageTestMarker") != "kept":
        raise Failure("the page was reloaded during %s (its window state is gone)" % what)


def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS * 3)
    driver.set_script_timeout(WAIT_SECONDS)
    return driver


def run(args, driver):
    base = args.base.rstrip("/")
    expected, total = api_list(base)
    if not expected:
        raise Failure("the API lists no task under prefix %s: seed some first" % args.prefix)
    # The bridge streams live updates: a page that falls back to polling would pass the checks
    # below a few seconds late and hide a broken stream, so the stream is required.
    if not server_streams(base):
        raise Failure("the bridge does not answer Accept: text/event-stream with a stream at %s/v2026/task-status" % base)

    driver.get(base + "/")
    driver.execute_script("window.__pageTestMarker = 'kept'")

    # (a) the stored tasks, newest first, each with its progress bar
    wait_for(driver, lambda d: row_ids(d) == expected, "the rows %s (the API's first page)" % expected)
    for row in rows(driver):
        if row["now"] is None or row["min"] != "0" or row["max"] != "100":
            raise Failure("row %s has no progress bar with aria-valuenow/min/max 0..100: %s" % (row["id"], row))
        if not 0 <= int(row["now"]) <= 100:
            raise Failure("row %s: aria-valuenow %s is outside 0..100" % (row["id"], row["now"]))
    print("ok (a): %d rows listed, as the API's first page (X-Total-Count %d)" % (len(expected), total))

    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "live").get_attribute("data-mode") == "live",
        "the page to be on the live stream (#live data-mode=live); it is %s"
        % driver.find_element(By.ID, "live").get_attribute("data-mode"),
    )

    # (b) an update on the Redis stream moves the bar, with no reload
    current = rows(driver)
    target_row = next((row for row in current if row["status"] == "running"), current[0])
    task_id = target_row["id"]
    value = 70 if target_row["now"] != "70" else 71
    patch = json.dumps([{"op": "replace", "path": "/percentComplete", "value": value}])
    xadd(args.redis_url, args.prefix, "id", task_id, "patch", patch, "x-sailpoint-experimental", "true",
         "request-id", "page-test-" + uuid.uuid4().hex)
    wait_for(
        driver,
        lambda d: any(row["id"] == task_id and row["now"] == str(value) for row in rows(d)),
        "task %s's progress bar to show aria-valuenow=%d after the XADD" % (task_id, value),
    )
    check_not_reloaded(driver, "the live update")
    mode = driver.find_element(By.ID, "live").get_attribute("data-mode")
    print("ok (b): %s's bar moved from %s to %d with no reload (page's live mode: %s)" % (task_id, target_row["now"], value, mode))

    # (b) a task created on the stream appears at the top
    new_id = "page-test-" + uuid.uuid4().hex[:12]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    created = {
        "id": new_id, "type": "QUARTZ", "uniqueName": "Page test task", "description": "Created by page_test.py",
        "parentName": None, "launcher": "page-test", "created": now, "modified": now, "launched": now,
        "completed": None, "completionStatus": None, "messages": [], "returns": [], "attributes": {},
        "progress": "Just started", "percentComplete": 5,
    }
    xadd(args.redis_url, args.prefix, "id", new_id, "create", json.dumps(created), "x-sailpoint-experimental", "true",
         "request-id", "page-test-" + uuid.uuid4().hex)
    wait_for(driver, lambda d: (row_ids(d) or [None])[0] == new_id, "the created task %s to appear as the first row" % new_id)
    check_not_reloaded(driver, "the creation")
    print("ok (b): the task %s created on the stream appeared at the top" % new_id)

    # (c) a status filter narrows the rows
    before = row_ids(driver)
    running, running_total = api_list(base, "completionStatus isnull")
    if not running or len(running) >= len(before):
        raise Failure("the seed must hold running and finished tasks (running %d of %d rows)" % (len(running), len(before)))
    Select(driver.find_element(By.ID, "f-status")).select_by_value("running")
    wait_for(driver, lambda d: row_ids(d) == running, "the rows to narrow to the running tasks %s" % running)
    not_running = [row["id"] for row in rows(driver) if row["status"] != "running"]
    if not_running:
        raise Failure("the running filter shows tasks that are not running: %s" % not_running)
    print("ok (c): the status filter Running narrowed %d rows to %d (X-Total-Count %d)" % (len(before), len(running), running_total))
    driver.find_element(By.ID, "f-clear").click()
    everything, _ = api_list(base)
    wait_for(driver, lambda d: row_ids(d) == everything, "the rows to come back after Clear")
    check_not_reloaded(driver, "filtering")

    # the detail view
    first = everything[0]
    driver.find_element(By.CSS_SELECTOR, '[data-task-id="%s"] button' % first).click()
    wait_for(driver, lambda d: d.find_element(By.ID, "detail").get_attribute("open") is not None, "the detail view to open")
    wait_for(
        driver,
        lambda d: '"id": "%s"' % first in (d.find_element(By.ID, "d-body").text or ""),
        "the detail view to show %s's JSON" % first,
    )
    detail_shot = os.path.splitext(args.screenshot)[0] + "-detail.png"
    driver.save_screenshot(detail_shot)
    driver.find_element(By.ID, "d-close").send_keys(Keys.ESCAPE)
    wait_for(driver, lambda d: d.find_element(By.ID, "detail").get_attribute("open") is None, "Escape to close the detail view")
    print("ok: the detail view showed %s and closed with Escape" % first)

    # (e) a screenshot of the list
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    time.sleep(0.5)  # let the last row's flash fade
    if not driver.save_screenshot(args.screenshot):
        raise Failure("could not save the screenshot to %s" % args.screenshot)
    with open(args.screenshot, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise Failure("%s is not a PNG" % args.screenshot)
    print("ok (e): screenshots %s and %s" % (args.screenshot, detail_shot))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the bridge's URL, http://127.0.0.1:PORT")
    parser.add_argument("--redis-url", required=True, help="the bridge's Redis, redis://127.0.0.1:PORT/0")
    parser.add_argument("--prefix", default="taskstatus", help="the bridge's key prefix")
    parser.add_argument("--screenshot", default=".build/status-page.png", help="where to save the PNG")
    args = parser.parse_args()
    if os.path.dirname(args.screenshot):
        os.makedirs(os.path.dirname(args.screenshot), exist_ok=True)

    try:
        driver = make_driver()
    except WebDriverException as error:
        print("FAIL: could not start headless Chromium: %s" % error.msg, file=sys.stderr)
        return 1
    failure = None
    try:
        run(args, driver)
    except Failure as error:
        failure = str(error)
    except (WebDriverException, OSError, subprocess.SubprocessError) as error:
        failure = "%s: %s" % (type(error).__name__, getattr(error, "msg", None) or error)
    try:
        # (d) the console: SEVERE entries are CSP violations, uncaught errors and failed loads
        logs = driver.get_log("browser")
        severe = [entry for entry in logs if entry.get("level") == "SEVERE"]
        for entry in logs:
            if entry.get("level") != "SEVERE":
                print("console %s: %s" % (entry.get("level"), entry.get("message")))
        if severe and failure is None:
            failure = "the browser console has SEVERE entries:\n  " + "\n  ".join(entry.get("message", "") for entry in severe)
        elif failure is None:
            print("ok (d): no SEVERE entry in the browser console (%d entries in all)" % len(logs))
        if failure is not None:
            driver.save_screenshot(args.screenshot)  # what the page looked like when it failed
    except WebDriverException as error:
        failure = failure or "could not read the browser console: %s" % error.msg
    finally:
        driver.quit()
    if failure is not None:
        print("FAIL: " + failure, file=sys.stderr)
        return 1
    print("page test: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
