"""Re-take `docs/review-page.png`: round 2 of the default campaign awaiting review on its web page.

    .venv/bin/python docs/screenshots.py [--out docs/review-page.png] [--chromium /usr/bin/chromium]

Runs the real default campaign (simglucose) with review in a temporary folder, approves round 1 as
the policy would, serves round 2's review page on 127.0.0.1 and photographs it in Debian's Chromium
(through Playwright; never `playwright install`). Takes a few minutes (eight simulated days).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from rich.console import Console

from wetloop.agent import AgentSettings, Campaign
from wetloop.agent.web import start_server
from wetloop.campaign import Decision, default_spec_path, load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("review-page.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_spec(default_spec_path())
        with Campaign.create(spec, Path(tmp) / "run", settings=AgentSettings(review=True), console=console) as c:
            first = c.run()
            assert first.review is not None
            approve = [
                Decision(proposal_key=p["proposal_key"], action="approve", by="person:ada") for p in first.review["selected"]
            ]
            second = c.review(approve)
            assert second.review is not None and second.review["round"] == 2, "round 2 should await review"
            server = start_server(c, reviewer="ada")
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                    page = browser.new_page(viewport={"width": 1300, "height": 900})
                    page.goto(server.url)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(args.out), full_page=False)
                    browser.close()
            finally:
                server.stop()
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
