"""axe-core in real Chromium: the violations of a page at the impacts that fail a test."""

import importlib.resources

FAILING_IMPACTS = ("serious", "critical")


def axe_script():
    """axe-core's source, as shipped in the axe-playwright-python wheel (no download at test time)."""
    return importlib.resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()


def axe_violations(page, impacts=FAILING_IMPACTS):
    """Run axe-core (WCAG 2.0/2.1 A and AA rules) on the page; return the failing violations as text."""
    # After a form post the DOM can be read before its stylesheets apply (seen on a loaded machine:
    # the navigation's links measured against no background): check the page as it is shown.
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_script())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
        " 'best-practice']}, resultTypes: ['violations']})")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in impacts:
            targets = [" ".join(node["target"]) for node in violation["nodes"]][:5]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return found


def assert_accessible(page, what):
    """axe-core with all its default rules finds no serious or critical violation on the page as shown."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("load")  # see axe_violations: never measure before the stylesheets apply
    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in FAILING_IMPACTS]
    assert not bad, f"{what}: {bad}"
