# GPU grading image: as cpu.Dockerfile, on a CUDA runtime base, with torch's CUDA build.
# Needs the network during the build (the CUDA wheels are too big for a wheelhouse we
# carry); run it with `--gpus all` (`autograder grade --image TAG --gpus`).
ARG BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

FROM ${BASE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! python3.11 -c 'import venv, ensurepip' >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv libseccomp2 && rm -rf /var/lib/apt/lists/*; \
    fi

FROM runtime AS setup
# torch's CUDA 12.6 wheels (same version as constraints.txt pins, with a +cu126 tag).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
COPY source /autograder/source
RUN AUTOGRADER_TORCH_INDEX="${TORCH_INDEX}" bash /autograder/source/setup.sh

FROM runtime
COPY --from=setup /autograder /autograder
# COPY makes /autograder 755; setup.sh's modes: the way to the venv, never a listing
# (containers run with a read-only root, where the grader cannot fix it).
RUN chmod 711 /autograder && chmod 700 /autograder/source
ENV PYTHONDONTWRITEBYTECODE=1 MPLCONFIGDIR=/tmp/matplotlib \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /autograder
CMD ["/autograder/source/run_autograder"]
