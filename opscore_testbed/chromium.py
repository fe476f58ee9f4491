"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol.

Browsers cannot be downloaded here, so Playwright's and Selenium's usual installs are out;
the DevTools protocol over one websocket (`websocket-client`, already a dependency of the
`kubernetes` client) is all a test needs to load a page, evaluate JavaScript in it, wait
for a condition and take a screenshot. The browser is one `ManagedProcess`, stopped by
its pid, with a throw-away profile directory; `--remote-debugging-port=0` lets it pick a
free port, which it writes to `DevToolsActivePort` in that profile.

    with Chromium() as browser:
        browser.navigate("http://127.0.0.1:8080/dashboard?key=...")
        browser.wait_for("document.querySelector('#dag g.step') !== null", timeout=20)
        browser.screenshot(Path("docs/dashboard.png"))
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websocket

from opscore_testbed.processes import ManagedProcess, StartStop, wait_until

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium"


class BrowserError(RuntimeError):
    """The browser is missing, did not start, or a page script failed."""


def find_chromium() -> Path | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


class Chromium(StartStop):
    """One headless browser with one page, for tests and screenshots."""

    def __init__(
        self,
        executable: Path | None = None,
        *,
        width: int = 1440,
        height: int = 900,
        log_dir: Path | None = None,
    ) -> None:
        found = executable or find_chromium()
        if found is None:
            raise BrowserError(f"chromium not found on PATH; {INSTALL_HINT}")
        self.executable = found
        self.width, self.height = width, height
        self._profile = Path(tempfile.mkdtemp(prefix="opscore-chromium-"))
        self._log_dir = log_dir or self._profile
        self._process: ManagedProcess | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def start(self, timeout: float = 60.0) -> None:
        argv = [
            str(self.executable),
            *FLAGS,
            f"--user-data-dir={self._profile / 'profile'}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        self._process = ManagedProcess("chromium", argv, log_path=self._log_dir / "chromium.log")
        self._process.start()
        port_file = self._profile / "profile" / "DevToolsActivePort"
        try:
            wait_until(
                lambda: (
                    self._alive() and port_file.exists() and port_file.read_text().strip() != ""
                ),
                timeout=timeout,
                what="chromium to open its DevTools port",
            )
        except TimeoutError:
            tail = self._process.tail()
            self.stop()
            raise BrowserError(f"chromium did not start:\n{tail}") from None
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10, trust_env=False)
        page = next(t for t in targets.json() if t.get("type") == "page")
        self._ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _alive(self) -> bool:
        if self._process is None or not self._process.is_running():
            raise BrowserError(f"chromium exited:\n{self._process.tail() if self._process else ''}")
        return True

    def stop(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(OSError):
                self._ws.close()
            self._ws = None
        if self._process is not None:
            self._process.stop()
            self._process = None
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol ------------------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events in between are skipped)."""
        if self._ws is None:
            raise BrowserError("the browser is not started")
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") != call_id:
                continue
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return (result.get("result") or {}).get("value")

    def wait_for(self, expression: str, *, timeout: float, what: str | None = None) -> Any:
        """Poll until `expression` is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None  # e.g. the page is still navigating
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s waiting for {what or expression}"
                )
            time.sleep(0.1)

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": self.width,
                "height": size["height"],
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
