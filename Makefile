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

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

benchmark: install
	$(PY) benchmarks/distill_step.py
	$(PY) benchmarks/latency.py --json benchmarks/latency.json

# The seeded study of the paper's claims (needs ../shared/data; ~3 h on 2 CPU cores; resumable):
# each finished part's results land in benchmarks/study_results/cpu/ and are committed.
study: install
	$(PY) benchmarks/study.py --commit

study-report: install
	$(PY) benchmarks/study_report.py

clean:
	rm -rf $(VENV) demo_output
