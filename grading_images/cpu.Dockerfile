# CPU grading image: one assignment's Gradescope bundle, installed by the bundle's own
# setup.sh, as Gradescope installs it. `autograder image build` fills the build context:
# wheelhouse/ (every wheel, downloaded once on the host) and source/ (the bundle). No
# network during the build.
#
# BASE: any Debian or Ubuntu image. `autograder image base` makes one with debootstrap;
# Gradescope's manual-Docker base (gradescope/autograder-base) works as well.
ARG BASE=dl-autograder-base:bookworm

FROM ${BASE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Bases without Python 3.11 (Ubuntu 22.04) take it from their archive; needs the network.
# hadolint ignore=DL3008
RUN if ! python3.11 -c 'import venv, ensurepip' >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv libseccomp2 && rm -rf /var/lib/apt/lists/*; \
    fi

# Every dependency, from the wheelhouse: one layer that every assignment's image shares
# as long as the pins (constraints.txt) stay the same.
FROM runtime AS deps
COPY wheelhouse /wheelhouse
RUN python3.11 -m venv /autograder/venv \
    && /autograder/venv/bin/pip install -q --no-index --no-deps /wheelhouse/*.whl \
    && chmod -R a+rX /autograder/venv

FROM runtime
COPY --from=deps /autograder/venv /autograder/venv
# The bundle; its wheelhouse/ holds only the build tools of the harness (the rest is in).
COPY source /autograder/source
# Gradescope's own step: installs the harness, makes the hidden suite root-only.
RUN bash /autograder/source/setup.sh
ENV PYTHONDONTWRITEBYTECODE=1 MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /autograder
CMD ["/autograder/source/run_autograder"]
