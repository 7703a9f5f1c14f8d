# Two commands set everything up: `make course` (the main job) and `make test` (the suite).
# Both create and fill .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gantools-installed
EXTRAS ?= test,course

# The course's environment (gantools/runtime.py): TensorFlow's oneDNN kernels on, also on
# CPUs where TensorFlow leaves them off by default; `make lab TF_ENABLE_ONEDNN_OPTS=0` to compare.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TF_ENABLE_ONEDNN_OPTS ?= 1
export PYTHONHASHSEED ?= 0

DEMO_STEPS ?= 3000
DEMO_OUT   ?= runs/demo

.PHONY: help venv lint test course grade demo lab bench sandbox browser idx-data clean-venv

help:
	@echo "make course   the main job: student release, executed solutions, autograding self-check"
	@echo "              only what changed; ONLY=\"04_lsgan\" for some assignments, FORCE=1 to"
	@echo "              re-execute, RERELEASE=1 to regenerate releases students already have"
	@echo "make test     create .venv if needed, lint, run the whole test suite"
	@echo "make grade    autograde every submission of ASSIGNMENT=... on WORKERS=N local Dask"
	@echo "              workers (default: one per core); SCHEDULER=tcp://host:8786 for a cluster"
	@echo "make lab      JupyterLab on the course (students and self-learners)"
	@echo "make demo     train the course's DCGAN on the bundled MNIST digits from the command line"
	@echo "make lint     ruff on .py and .ipynb files"
	@echo "make bench    the benchmarks in benchmarks/ (minutes; prints tables)"
	@echo "make venv     only create/refresh .venv"
	@echo "make sandbox  install bubblewrap, the autograder's kernel sandbox (Debian/Ubuntu)"
	@echo "make browser  install Chromium for tests/course/test_browser.py (Debian/Ubuntu)"
	@echo "make idx-data install Fashion-MNIST's original IDX files (Debian's dataset-fashion-mnist)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "gantools needs Python >= 3.10; run make PYTHON=/path/to/python3.1x")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m gancourse.kernel install
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .

# Two workers (pytest-xdist), each running whole test modules: the class-grading modules
# (tests/course/test_course*.py) take minutes each and run beside the rest. TEST_WORKERS=0 runs
# everything in one process.
TEST_WORKERS ?= 2

test: lint
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

course: $(STAMP)
	$(PY) -m gancourse.build $(if $(ONLY),--only $(ONLY),) $(if $(FORCE),--force,) \
		$(if $(RERELEASE),--rerelease,) $(if $(WORKERS),--workers $(WORKERS),)

# Instructors: a whole class in parallel (docs/instructors.md: Grading a whole class in parallel)
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "make grade needs ASSIGNMENT=..., e.g. make grade ASSIGNMENT=01_basic_gan"; exit 2; }
	$(PY) -m gancourse.classgrade $(ASSIGNMENT) $(if $(WORKERS),--workers $(WORKERS),) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER),) $(if $(FORCE),--force,)

demo: $(STAMP)
	$(PY) -m gantools train --dataset mnist5k --loss non-saturating --steps $(DEMO_STEPS) \
		--every 250 --out $(DEMO_OUT) $(if $(wildcard $(DEMO_OUT)/checkpoints/checkpoint),--resume,)
	@echo ""
	@echo "Pictures of the run: $(DEMO_OUT)/samples.png (samples) and $(DEMO_OUT)/curves.png (curves)"

lab: $(STAMP)
	cd course && ../$(PY) -m jupyter lab

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_batchnorm.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_autograde.py
	$(PY) benchmarks/bench_grade.py
	$(PY) benchmarks/bench_seeds.py 02_gan_tricks
	$(PY) benchmarks/bench_seeds.py 03_wgan
	$(PY) benchmarks/bench_seeds.py 04_lsgan
	$(PY) benchmarks/bench_seeds.py 05_spectral_norm
	$(PY) benchmarks/bench_seeds.py 06_conditional_gan
	$(PY) benchmarks/bench_seeds.py 08_semi_supervised_gan
	$(PY) benchmarks/bench_seeds.py 09_cyclegan
	$(PY) benchmarks/bench_seeds.py 10_scaling_up

# bubblewrap isolates the kernels that autograde student submissions (docs/grading.md)
sandbox:
	@command -v bwrap >/dev/null 2>&1 && echo "bubblewrap: $$(bwrap --version)" || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq bubblewrap >/dev/null && \
		echo "bubblewrap: $$(bwrap --version)"; }

# Chromium runs a release notebook in JupyterLab for tests/course/test_browser.py
# (docs/tests.md); Playwright drives this system build, it never downloads its own
browser:
	@command -v chromium >/dev/null 2>&1 && echo "chromium: $$(chromium --version)" || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null && \
		echo "chromium: $$(chromium --version)"; }

# Fashion-MNIST's four original IDX files in /usr/share/datasets/fashion-mnist, where
# gantools.data reads them offline; tests/library/test_data_files.py reads them there
idx-data:
	@test -d /usr/share/datasets/fashion-mnist && echo "fashion-mnist: /usr/share/datasets/fashion-mnist" || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null && \
		echo "fashion-mnist: /usr/share/datasets/fashion-mnist"; }

clean-venv:
	rm -rf $(VENV)
