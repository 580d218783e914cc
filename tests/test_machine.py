"""The machine record: what it names, and that it never changes the environment it reads."""

import os

import pytest

from harness import machine


def test_kernel_variables_are_found_by_name_and_prefix():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2", "MKL_DEBUG_CPU_TYPE": "5", "HOME": "/root",
           "OPENBLAS": "x", "ATEN_CPU_CAPABILITY": "avx2",
           "KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE"}
    assert machine.kernel_environment(env) == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_DEBUG_CPU_TYPE": "5",
                                               "OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}
    assert machine.forced_kernels(env) == {"OPENBLAS_CORETYPE": "Haswell", "MKL_DEBUG_CPU_TYPE": "5",
                                           "ATEN_CPU_CAPABILITY": "avx2"}


def test_the_native_environment_drops_only_the_overrides_and_leaves_the_original_alone():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2", "PATH": "/bin"}
    native = machine.native_env(env)
    assert native == {"OMP_NUM_THREADS": "2", "PATH": "/bin"}
    assert env["OPENBLAS_CORETYPE"] == "Haswell"


def test_the_record_names_cpu_cores_blas_and_versions():
    import threadpoolctl  # noqa: F401  (it sets KMP_DUPLICATE_LIB_OK when first imported)

    before = dict(os.environ)
    r = machine.record(("numpy",))
    assert dict(os.environ) == before
    assert r["machine.cpu"] and int(r["machine.cores_logical"]) >= int(r["machine.cores_usable"]) >= 1
    assert r["blas.numpy.library"] in ("openblas", "mkl", "blis", "accelerate")
    assert r["blas.numpy.kernel"] and int(r["blas.numpy.threads"]) >= 1
    assert r["version.numpy"] and r["env.kernel_overrides"] == (
        ",".join(f"{k}={v}" for k, v in machine.forced_kernels().items()) or "none")
    text = machine.summary(r)
    assert r["machine.cpu"] in text and r["blas.numpy.kernel"] in text and "kernel overrides" in text


def test_the_record_describes_torchs_own_blas():
    pytest.importorskip("torch")
    r = machine.record(("numpy", "torch"))
    assert r["blas.torch.library"] != "unknown" and r["blas.torch.kernel"]
    assert r["build.torch"].startswith(r["version.torch"].split("+")[0])


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_gemm_peak_in_a_subprocess_is_a_plausible_rate(library):
    rates = machine.gemm_in_subprocess(library, threads=1, repeats=2)
    assert len(rates) == 2 and all(1 < r < 10_000 for r in rates)  # GFLOP/s of one core
