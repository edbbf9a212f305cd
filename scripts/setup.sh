#!/usr/bin/env bash
# Installs every Debian package the project needs (idempotent: a no-op when all are present) and
# builds Release into build/ (CLI at build/omnibind, Python module in build/python).
#   scripts/setup.sh            install + build
#   scripts/setup.sh --no-build install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev              # tensors, nn, autograd, oneDNN (Debian's CPU build of libtorch 1.13)
  libopenblas0-pthread libopenblas-dev  # without it libblas.so.3 is the reference BLAS: ~50x slower GEMM
  libfaiss-dev              # search and pseudo-pair mining
  libgloo-dev               # Gloo headers for c10d's ProcessGroupGloo (the library itself comes with libtorch)
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libpcre2-dev              # Unicode regex for the CLIP BPE tokenizer
  libicu-dev                # Unicode lowercasing and NFC for the CLIP BPE tokenizer
  libsentencepiece-dev      # SentencePiece tokenizer (SigLIP)
  libsndfile1-dev libsoxr-dev  # audio decoding
  libjpeg-dev libpng-dev    # image decoding
  libsqlite3-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev python3-numpy  # the Python module (python/, docs/PYTHON.md)
  chromium nodejs           # the web page's end-to-end test (headless Chromium driven by Playwright)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libtorch must not run on the reference BLAS: make sure the OpenBLAS alternative is selected.
if [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
  current=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
  case "$current" in
    *openblas*) ;;
    *) SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
       $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ;;
  esac
fi

# Playwright (playwright-core only: it drives /usr/bin/chromium, no browser download) for the web
# page's end-to-end test, into tests/e2e/node_modules (git-ignored). Debian's nodejs ships without npm.
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  # --silent hides npm's own error, so say what failed (typically: the npm registry is unreachable).
  if ! npm_log=$(PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --no-audit --no-fund 2>&1); then
    echo "setup: 'npm ci --prefix tests/e2e' failed (installing playwright-core for the web page's end-to-end test);" \
         "npm said:" >&2
    printf '%s\n' "$npm_log" | tail -n 15 >&2
    echo "setup: check that the npm registry is reachable (npm config get registry), then rerun scripts/setup.sh" >&2
    exit 1
  fi
fi

[ "${1:-}" = "--no-build" ] && exit 0

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
echo "setup: built build/omnibind"

# The Python module (built above when pybind11 and the Python headers are found): check that the system
# Python imports it, and say what failed if not.
if ! py_log=$(PYTHONPATH=build/python /usr/bin/python3 -c "import omnibind" 2>&1); then
  echo "setup: 'PYTHONPATH=build/python /usr/bin/python3 -c \"import omnibind\"' failed; python3 said:" >&2
  printf '%s\n' "$py_log" | tail -n 15 >&2
  echo "setup: check that pybind11-dev, python3-dev and python3-numpy are installed and that cmake found them" \
       "(grep -i pybind11 build/CMakeCache.txt), then rerun scripts/setup.sh" >&2
  exit 1
fi
echo "setup: built build/python (PYTHONPATH=build/python python3 -c 'import omnibind')"
