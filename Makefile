# The README's two commands. Each creates .venv and installs the project on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch + the torchvision that imports beside it (FID/KID); override, e.g. `make test TORCH_SPEC="torch>=2.4 torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: demo demo-teacher test install benchmark study study-report clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(foreach spec,$(TORCH_SPEC),"$(spec)")
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: install
	$(PY) examples/demo.py

# Train the demo's teacher once (resumable: rerun to continue from demo_output/demo_teacher) and
# write it to examples/demo_teacher/ (weights, config, card, args, samples), to be committed.
demo-teacher: install
	$(PY) examples/demo.py --train_teacher

test: install browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# Debian's chromium + chromium-driver for the wkd-space browser test (tests/test_space_browser.py),
# installed only when missing. Without apt-get, root/sudo or a network, that test skips: never fatal.
.PHONY: browser
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ command -v apt-get >/dev/null && $(SUDO) apt-get update -qq >/dev/null 2>&1 && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  chromium chromium-driver \
	  >/dev/null 2>&1; } || echo "chromium not installed: the wkd-space browser test will skip"

benchmark: install
	$(PY) benchmarks/distill_step.py
	$(PY) benchmarks/latency.py --json benchmarks/latency.json

# The seeded study of the paper's claims (needs ../shared/data; ~8 h on 2 CPU cores, in resumable
# parts): learning curves and each finished part's results land in
# benchmarks/study_results/converged/cpu/ and are committed. (The first, 600-step study's files
# stay in benchmarks/study_results/cpu/.)
study: install
	$(PY) benchmarks/study.py --commit

study-report: install
	$(PY) benchmarks/study_report.py

clean:
	rm -rf $(VENV) demo_output
