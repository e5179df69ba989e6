# Sourced by the scripts that need NumPy and SciPy: `ensure_venv DIR` creates a venv at
# DIR with both installed, once, and leaves its python at "$DIR/bin/python".
ensure_venv() {
  if [[ ! -x "$1/bin/python" ]]; then
    python3 -m venv "$1"
    "$1/bin/pip" install -q numpy scipy
  fi
}
