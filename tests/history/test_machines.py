"""Which runs share a machine: the record's CPU, cores, SIMD, BLAS and overrides, never versions."""

from harness.history import machines

BASE = {"machine.cpu": "AMD EPYC", "machine.cores_usable": "2", "machine.simd": "avx2,fma",
        "env.kernel_overrides": "none", "blas.numpy.library": "openblas", "blas.numpy.kernel": "Haswell",
        "blas.numpy.threads": "1", "version.numpy": "2.3.0", "git.commit": "abc"}
TORCH = {**BASE, "blas.torch.library": "mkl", "blas.torch.kernel": "AVX512"}


def test_the_record_names_the_machine_not_the_versions_or_threads():
    m = machines.machine(BASE)
    assert dict(m) == {k: BASE[k] for k in ("machine.cpu", "machine.cores_usable", "machine.simd",
                                            "env.kernel_overrides", "blas.numpy.library", "blas.numpy.kernel")}
    assert machines.machine({**BASE, "version.numpy": "2.4.0", "blas.numpy.threads": "2"}) == m


def test_a_scratch_run_and_a_torch_run_of_one_bench_are_one_machine_another_cpu_is_another():
    scratch, torch_ = machines.machine(BASE), machines.machine(TORCH)
    other = machines.machine({**TORCH, "machine.cpu": "Intel Xeon"})
    forced = machines.machine({**BASE, "env.kernel_overrides": "OPENBLAS_CORETYPE=Haswell"})
    index, found = machines.group([scratch, torch_, other, forced])
    assert index == {scratch: 0, torch_: 0, other: 1, forced: 2}
    assert dict(found[0])["blas.torch.kernel"] == "AVX512" and dict(found[1])["machine.cpu"] == "Intel Xeon"
    a, b = machines.merged([scratch, torch_]), machines.merged([other])
    assert machines.differences(a, b) == ["machine.cpu 'AMD EPYC' vs 'Intel Xeon'"]
    assert machines.differences(a, machines.merged([scratch])) == []  # a field one side lacks is no difference
    assert machines.describe(found[0]) == ("AMD EPYC, 2 usable cores, SIMD avx2,fma; numpy openblas (Haswell); "
                                           "torch mkl (AVX512); kernel overrides: none")
