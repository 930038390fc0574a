#!/bin/sh
# The install steps of the container image (Dockerfile), also run by tests/deploy/test_image.py
# in a clean virtualenv so that the recipe cannot rot unnoticed.
#
#   install.sh deps VENV            a virtualenv (with PYTHON, default python3) holding the pinned,
#                                   hash-checked dependencies of requirements.lock
#   install.sh app VENV SRC STATIC  build ScaleDeck's wheel from SRC, install it without touching
#                                   the dependencies, and collect the static files into STATIC
#
# uv does the work (UV names the binary, default `uv`).
set -eu
step=$1
venv=$2
uv=${UV:-uv}
case "$step" in
deps)
    "$uv" venv --quiet --python "${PYTHON:-python3}" "$venv"
    "$uv" pip install --quiet --python "$venv/bin/python" --require-hashes --no-deps --only-binary :all: \
        -r "${LOCK_FILE:-requirements.lock}"
    ;;
app)
    src=$3
    static=$4
    wheels=$(mktemp -d)
    # No build isolation: setuptools comes pinned from the lock, nothing is fetched unpinned.
    "$uv" build --quiet --wheel --no-build-isolation --python "$venv/bin/python" --out-dir "$wheels" "$src"
    "$uv" pip install --quiet --python "$venv/bin/python" --no-deps "$wheels"/scaledeck-*.whl
    rm -rf "$wheels"
    # Production settings (hashed, compressed files), with a throwaway key: collectstatic reads
    # settings but never signs anything.
    DJANGO_SETTINGS_MODULE=config.settings_production \
    SCALEDECK_SECRET_KEY="$($venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(60))')" \
    SCALEDECK_STATIC_ROOT="$static" \
    SCALEDECK_DATA_DIR="$(mktemp -d)" \
        "$venv/bin/scaledeck" collectstatic --noinput --verbosity 0
    ;;
*)
    echo "usage: install.sh deps VENV | app VENV SRC STATIC" >&2
    exit 2
    ;;
esac
