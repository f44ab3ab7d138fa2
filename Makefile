# trustbridge: `make demo` and `make test` work on a fresh machine (they run `make setup` first).
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup bench-setup demo test lint typecheck unit bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/trustbridge demo --out demo-out

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench

typecheck: setup
	.venv/bin/mypy

unit: setup
	$(PY) -m pytest -n 2 -q

test: lint typecheck unit

bench-setup:
	@TRUSTBRIDGE_SETUP_BENCH=1 bash scripts/setup.sh

bench: bench-setup
	$(PY) -m bench.issuance
	$(PY) -m bench.ocsp
	$(PY) -m bench.crl
	$(PY) -m bench.resolve
	$(PY) -m bench.credentials
	$(PY) -m bench.assess
	$(PY) -m bench.exchange
	$(PY) -m bench.log
	$(PY) -m bench.demo
	$(PY) -m bench.simulate

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache
