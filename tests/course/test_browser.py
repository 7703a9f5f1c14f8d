"""A student's release notebook in a real browser: JupyterLab driven through headless Chromium.

The other notebook tests execute notebooks without a front end; this one looks at what a
student sees. It generates notebook 01's release in a temporary course, fills the answers
from the source (one of them wrong on purpose), starts JupyterLab on a free local port with
a random token and the course's kernel in short mode, opens the notebook in Chromium, runs
Run > Run All Cells from the menu and reads the page: every code cell ran, the live
dashboard rendered and was updated in place, and the failing visible test shows its hint.

Needs Debian's Chromium (``make browser``) and Playwright for Python (the ``test`` extra).
Playwright drives that Chromium through ``executable_path``; ``playwright install``, which
downloads browsers, is never needed. Without either, the tests are skipped with the reason.
``pytest tests/course/test_browser.py --dashboard-png docs/dashboard.png`` also saves the
screenshot of the dashboard that the README shows (add ``--browser-full-mode`` for the
pictures of a full training run, about 6 minutes).
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from support.class_grading import answers, nb_grader

from gancourse.build import pipeline
from gancourse.kernel import DISPLAY_NAME, ensure_installed

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "01_basic_gan"
CHROMIUM = Path("/usr/bin/chromium")
# without the background-networking switches Chromium's own requests (updates, sync, field
# trials) are refused on a closed network and slow every page down
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# One answer is wrong on purpose: the non-saturating loss where the minimax one is asked.
# Its visible test fails with this hint (gancourse/checks/notebooks/nb01_basic_gan.py); the tag
# lets Run All go on past the error, as a student's next click on the following cell would.
WRONG = {"generator_loss": "def generator_loss(fake_logits):\n"
                           "    return tf.reduce_mean(tf.nn.softplus(-fake_logits))"}
FAILING_TEST = "test_generator_loss"
HINT = "this is the non-saturating loss"
TRAINING = "digits_non_saturating"  # the cell with trainer.fit(..., LiveDashboard())
# Short mode trains the digits for 10 steps with pictures every 10: one dashboard update.
# Pictures every 5 steps update it twice, so that updating in place can be seen.
PICTURES = ("PICTURE_EVERY = budget(250, 10)", "PICTURE_EVERY = budget(250, 5)")
SOURCE = ROOT / "course" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
FULL_STEPS = int(re.search(r"DIGIT_STEPS = budget\((\d+), 10\)", SOURCE.read_text()).group(1))
UPDATES = {"short": (5, 10), "full": (250, FULL_STEPS)}  # (pictures every, steps) of that cell
# The dashboard is made of plain display outputs; ipywidgets is there for students' own
# experiments (docs/library.md): one slider checks that JupyterLab's widget manager works.
OWN_WIDGET = 'import ipywidgets\n\nipywidgets.IntSlider(value=7, description="mine")'
STATUS = re.compile(r"^step \d+$")  # the dashboard's status line (gantools/viz/live.py)
WAITING = "waiting for the first pictures"
STDOUT, STDERR = "application/vnd.jupyter.stdout", "application/vnd.jupyter.stderr"


def _require_browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium")
    pytest.importorskip("playwright.sync_api",
                        reason="Playwright for Python is missing: pip install -e '.[test]'")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _student_notebook(course: Path, folder: Path) -> tuple[Path, nbformat.NotebookNode]:
    """The release with every answer from the source but one, pictures every 5 steps, and a
    widget of the student's own at the end."""
    source = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    filled = {**answers(source), **WRONG}
    for cell in release.cells:
        gid = nb_grader(cell).get("grade_id")
        if gid in filled:
            cell.source = filled[gid]
        if gid == FAILING_TEST:
            cell.metadata["tags"] = ["raises-exception"]
        if gid == "hyperparameters":
            assert PICTURES[0] in cell.source, f"notebook 01 no longer sets {PICTURES[0]}"
            cell.source = cell.source.replace(*PICTURES)
    release.cells.append(nbformat.v4.new_code_cell(OWN_WIDGET))
    folder.mkdir()
    path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(release, path)
    return path, release


def _start_lab(tmp: Path, folder: Path, token: str, full: bool):
    """JupyterLab on a free port, its settings and runtime files in ``tmp``."""
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "get notified about Jupyter news?" toast over the notebook
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "NBGRADER_EXECUTION", "GANCOURSE_SHORT")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               TF_CPP_MIN_LOG_LEVEL="2", **({} if full else {"GANCOURSE_SHORT": "1"}))
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
            f"--LabApp.user_settings_dir={tmp / 'settings'}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses that otherwise
        args.append("--allow-root")
    log = open(tmp / "jupyter.log", "w")  # closed by _stop_lab
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log, proc.log_path = log, tmp / "jupyter.log"
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{_tail(proc)}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterLab did not answer on {url} in 90 s:\n{_tail(proc)}")
        time.sleep(0.5)


def _tail(proc, chars=3000) -> str:
    proc.log.flush()
    return proc.log_path.read_text(errors="replace")[-chars:]


def _stop_lab(proc, url, token):
    """Shut the server down with its kernels; kill whatever is left of it."""
    try:
        import psutil  # ipykernel's dependency; kernels run in their own sessions

        family = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        family = []
    if url is not None:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            proc.wait(timeout=15)
        except Exception:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for child in family:
        try:
            child.kill()
        except Exception:
            pass
    proc.log.close()


# JavaScript run in the page. Cells are found by their index in the notebook: JupyterLab's
# default windowing keeps every cell in the DOM (content-visibility), so indexes match.
OUTPUTS = """(index) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const area = cell && cell.querySelector('.jp-OutputArea');
  if (!area) return [];
  const hash = (s) => {  // a sample of the data URL: cheap on every redraw of the bar
    let h = 0;
    for (let i = 0; i < s.length; i += 61) h = (h * 31 + s.charCodeAt(i)) | 0;
    return s.length + ':' + h;
  };
  const children = area.querySelectorAll(':scope > .jp-OutputArea-child');
  return Array.from(children).map(child => {
    const out = child.querySelector('[data-mime-type]');
    const images = Array.from(child.querySelectorAll('img'));
    return {mime: out ? out.getAttribute('data-mime-type') : null,
            text: (out || child).textContent.trim().slice(0, 2000),
            widgets: child.querySelectorAll('.jupyter-widgets').length,
            images: images.map(img => hash(img.src)),
            loaded: images.every(img => img.complete && img.naturalWidth > 0)};
  });
}"""
# records every distinct state of a cell's outputs while the notebook runs
WATCH = """(index) => {
  const read = """ + OUTPUTS + """;
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  window.__states = [];
  let last = null;
  const record = () => {
    const state = read(index), key = JSON.stringify(state);
    if (key !== last) { window.__states.push(state); last = key; }
  };
  new MutationObserver(record).observe(cell, {subtree: true, childList: true,
                                              characterData: true, attributes: true});
}"""
PROMPTS = """() => Array.from(
  document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'),
  e => e.textContent.trim())"""
KERNEL = """() => {
  const e = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return e ? e.getAttribute('data-status') : null;
}"""


def _run_all(page, notebook, full: bool) -> dict:
    """Open the notebook, select the course's kernel if asked, run all cells, read the page."""
    cells = len(notebook.cells)
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length === {cells}",
                           timeout=60_000)
    page.wait_for_function(f"document.querySelector('.jp-Dialog') || ({KERNEL})() === 'idle'",
                           timeout=60_000)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():  # "Select Kernel": the course's, never a default the page offers
        dialog.locator("select").select_option(label=DISPLAY_NAME)
        dialog.get_by_role("button", name="Select", exact=True).click()
        page.wait_for_function(f"({KERNEL})() === 'idle'", timeout=60_000)
    index = {nb_grader(c).get("grade_id"): i for i, c in enumerate(notebook.cells)}
    index["own_widget"] = len(notebook.cells) - 1
    page.evaluate(WATCH, index[TRAINING])
    start = time.monotonic()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(f"({PROMPTS})().some(p => p !== '[ ]:')", timeout=30_000)
    # done: nothing queued or running ([*]) and the kernel idle
    page.wait_for_function(f"!({PROMPTS})().includes('[*]:') && ({KERNEL})() === 'idle'",
                           timeout=(1500 if full else 240) * 1000, polling=500)
    seconds = time.monotonic() - start
    page.wait_for_timeout(500)  # the last display messages after the kernel went idle
    return {"seconds": seconds, "prompts": page.evaluate(PROMPTS),
            "kernel_name": page.locator(".jp-Toolbar-kernelName").first.text_content(),
            "states": page.evaluate("window.__states"),
            "outputs": {gid: page.evaluate(OUTPUTS, i) for gid, i in index.items() if gid},
            "page_text": page.evaluate("document.body.textContent"),
            "training_index": index[TRAINING]}


def _dashboard(outputs) -> list:
    """Indexes of the dashboard's status line in a cell's outputs."""
    return [i for i, o in enumerate(outputs)
            if o["mime"] == "text/html" and (STATUS.match(o["text"]) or o["text"] == WAITING)]


def _screenshot(page, training_index, path):
    """The dashboard alone, its status line and both pictures, cropped from the page; None
    without one (the tests say what is missing)."""
    outputs = page.evaluate(OUTPUTS, training_index)
    status = _dashboard(outputs)
    if len(status) != 1 or len(outputs) < status[0] + 3:
        return None
    first = status[0]
    children = page.locator(".jp-Notebook .jp-Cell").nth(training_index).locator(
        ".jp-OutputArea > .jp-OutputArea-child")
    children.nth(first + 1).evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)
    boxes = [children.nth(first + k).locator(".jp-OutputArea-output").bounding_box()
             for k in range(3)]
    left, top = min(b["x"] for b in boxes) - 6, boxes[0]["y"] - 2
    right = max(b["x"] + b["width"] for b in boxes) + 6
    bottom = max(b["y"] + b["height"] for b in boxes)  # the progress bar comes next
    page.screenshot(path=str(path), clip={"x": left, "y": top, "width": right - left,
                                          "height": bottom - top})
    return path


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory, request):
    """Notebook 01's release run top to bottom in JupyterLab in Chromium, as read from the page."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    full = request.config.getoption("--browser-full-mode")
    tmp = tmp_path_factory.mktemp("browser")
    course = tmp / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "course" / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    pipeline.run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    ensure_installed()  # the kernel the notebook names
    path, notebook = _student_notebook(course, tmp / "student")

    token = secrets.token_hex(16)
    lab, url, playwright, browser = None, None, None, None
    start = time.monotonic()
    try:
        lab, url = _start_lab(tmp, path.parent, token, full)
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(f"{url}/lab/tree/{path.name}?token={token}")
        result = _run_all(page, notebook, full)
        result["screenshot"] = _screenshot(page, result["training_index"], tmp / "dashboard.png")
        target = request.config.getoption("--dashboard-png")
        if target and result["screenshot"]:
            shutil.copy(result["screenshot"], target)
        result.update(notebook=notebook, total_seconds=time.monotonic() - start,
                      mode="full" if full else "short", log=_tail(lab))
        print(f"\nbrowser: notebook ran in {result['seconds']:.0f} s, "
              f"{result['total_seconds']:.0f} s with JupyterLab and Chromium")
        yield result
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        if lab is not None:
            _stop_lab(lab, url, token)


def test_every_code_cell_ran_in_the_course_kernel(browser_run):
    code = [c for c in browser_run["notebook"].cells if c.cell_type == "code"]
    prompts = browser_run["prompts"]
    assert browser_run["kernel_name"].strip() == DISPLAY_NAME
    assert len(prompts) == len(code), "a code cell is missing from the page"
    assert prompts == [f"[{n}]:" for n in range(1, len(code) + 1)], (
        f"cells that did not run ([ ]) or never finished ([*]): {prompts}")


def test_the_dashboard_renders(browser_run):
    """One status line and two pictures that the browser decoded; no widget errors."""
    outputs = browser_run["outputs"][TRAINING]
    status = _dashboard(outputs)
    assert len(status) == 1, f"expected one dashboard, found {len(status)}: {outputs}"
    first = status[0]
    _, steps = UPDATES[browser_run["mode"]]
    assert outputs[first]["text"] == f"step {steps}"
    pictures = outputs[first + 1: first + 3]
    assert [o["mime"] for o in pictures] == ["image/png", "image/png"], outputs
    assert all(o["loaded"] and len(o["images"]) == 1 for o in pictures)
    for text in ("Error displaying widget", "Loading widget"):
        assert text not in browser_run["page_text"]
    assert browser_run["screenshot"], "no screenshot of the dashboard"
    png = browser_run["screenshot"].read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 10_000


def test_the_dashboard_and_the_progress_bar_update_in_place(browser_run):
    """Over the whole run the training cell never holds two dashboards or two progress bars
    (a dashboard printed anew at each update would); the status went from waiting through
    every update to the end, and the sample picture changed."""
    states = browser_run["states"]
    assert states, "the training cell's outputs never changed"
    statuses = []
    for outputs in states:
        dash = _dashboard(outputs)
        bars = [o for o in outputs if o["mime"] in (STDOUT, "text/plain")
                and "training:" in o["text"]]
        assert len(dash) <= 1, f"more than one dashboard at once: {outputs}"
        assert len(bars) <= 1, f"the progress bar was split: {[b['text'] for b in bars]}"
        if dash and outputs[dash[0]]["text"] not in statuses[-1:]:
            statuses.append(outputs[dash[0]]["text"])
    every, steps = UPDATES[browser_run["mode"]]
    assert statuses == [WAITING] + [f"step {s}" for s in range(every, steps + 1, every)]
    samples = {}
    for outputs in states:  # the sample picture as each status line was shown
        dash = _dashboard(outputs)
        if dash and len(outputs) > dash[0] + 1 and outputs[dash[0] + 1]["images"]:
            samples[outputs[dash[0]]["text"]] = outputs[dash[0] + 1]["images"][0]
    assert samples[f"step {every}"] != samples[f"step {steps}"], "the samples did not change"


def test_a_students_own_widget_renders(browser_run):
    """ipywidgets' front end is installed and works: the slider, not its text fallback."""
    outputs = browser_run["outputs"]["own_widget"]
    # without the widget manager JupyterLab shows the text fallback, IntSlider(value=7, ...)
    assert len(outputs) == 1 and outputs[0]["widgets"] >= 1, outputs
    assert "mine" in outputs[0]["text"] and "IntSlider" not in outputs[0]["text"], outputs


def test_the_failing_visible_test_shows_its_hint_and_the_others_pass(browser_run):
    outputs = browser_run["outputs"]
    errors = [o["text"] for o in outputs[FAILING_TEST] if o["mime"] == STDERR]
    assert errors and "GradingError" in errors[0] and HINT in errors[0], outputs[FAILING_TEST]
    for gid, cell_outputs in outputs.items():
        if gid.startswith("test_") and gid != FAILING_TEST:
            text = " ".join(o["text"] for o in cell_outputs)
            assert "✓" in text and "Error" not in text, (gid, text[-1500:])
