import Foundation
import Testing
import TestSupport

/// `mr2ct bench` at a tiny size: it runs and prints one parseable JSON line (no timing is asserted).
@Test func benchPrintsOneJSONLinePerConfiguration() throws {
    let result = try TestSupport.runMR2CT(["bench", "--size", "16", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                                           "--iterations", "1", "--inference-runs", "1", "--threads", "1"])
    #expect(result.status == 0, "\(result.stderr)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 1)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
    #expect(json["size"] as? Int == 16)
    #expect(json["blocks"] as? Int == 1)
    #expect(json["engine"] as? String == "mr2ct")
    for key in ["train_s_per_iter", "infer_s_per_slice", "gen_fwd_gflop"] {
        let value = try #require(json[key] as? Double, "\(key)")
        #expect(value > 0, "\(key)")
    }
    // Rates are printed to one decimal: at this tiny size on a busy machine they can round to 0.0.
    for key in ["infer_gflops_per_s", "train_gflops_per_s"] {
        let value = try #require(json[key] as? Double, "\(key)")
        #expect(value >= 0 && value.isFinite, "\(key)")
    }
    #expect((json["peak_rss_mb"] as? Int ?? 0) > 0)
}

@Test func benchRejectsBadSizes() throws {
    let result = try TestSupport.runMR2CT(["bench", "--size", "10"])
    #expect(result.status == 64)
    #expect(result.stderr.contains("--size"))
}

/// Both precisions and the oneDNN backend at a tiny size (32², so every layer has a non-empty output): the JSON
/// says which arithmetic ran (f32, or bf16 native/emulated). No timing is asserted.
@Test(arguments: [["--precision", "f32"], ["--precision", "bf16"], ["--convolution", "onednn"]])
func benchRunsBothPrecisions(_ options: [String]) throws {
    let result = try TestSupport.runMR2CT(["bench", "--size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                                           "--iterations", "1", "--inference-runs", "1", "--threads", "2"] + options)
    #expect(result.status == 0, "\(result.stderr)")
    let line = try #require(result.stdout.split(separator: "\n").first)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    let precision = try #require(json["precision"] as? String)
    if options == ["--precision", "bf16"] {
        #expect(precision == "bf16-onednn" || precision == "bf16-emulated")
    } else {
        #expect(precision == "f32")
    }
    #expect((json["train_s_per_iter"] as? Double ?? 0) > 0)
}

/// The JSON names the OpenBLAS kernels that ran ("blas_kernels", from `openblas_get_corename`), so that figures
/// from machines or environments with other kernels are not compared unknowingly: with `OPENBLAS_CORETYPE`
/// naming a set the CPU supports (SkylakeX with AVX-512, Haswell with AVX2 and FMA, Sandybridge with AVX), the
/// line says that set.
@Test func benchNamesTheOpenBLASKernels() throws {
    let flags = TestSupport.cpuFlags
    let core: String
    if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { core = "SkylakeX" }
    else if flags.contains("avx2") && flags.contains("fma") { core = "Haswell" }
    else if flags.contains("avx") { core = "Sandybridge" }
    else { return }   // not an x86-64 CPU with AVX: nothing to force
    var environment = ProcessInfo.processInfo.environment
    environment["OPENBLAS_CORETYPE"] = core
    let result = try TestSupport.runMR2CT(["bench", "--size", "16", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                                           "--iterations", "1", "--inference-runs", "1", "--threads", "1"],
                                          environment: environment)
    #expect(result.status == 0, "\(result.stderr)")
    let line = try #require(result.stdout.split(separator: "\n").first)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    #expect(json["blas_kernels"] as? String == core)
}

/// oneDNN's OpenMP runtime (libgomp) spins 10 000 times before an idle worker thread sleeps, instead of its default
/// 300 000 that kept a worker spinning on the core MR2CT's own kernels were to run on (`set_openmp_spin` in CDNNL's
/// shim.c), unless the user's environment sets `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`: libgomp's own report of the
/// settings it read (`OMP_DISPLAY_ENV=VERBOSE`, printed when oneDNN is first opened).
@Test func oneDNNsOpenMPRuntimeSpinsBrieflyUnlessTheUserSetsIt() throws {
    func spinCount(_ settings: [String: String]) throws -> String? {
        var environment = ProcessInfo.processInfo.environment
        // This test process set GOMP_SPINCOUNT for itself in the same way; the child must not inherit it.
        environment["GOMP_SPINCOUNT"] = nil
        environment["OMP_WAIT_POLICY"] = nil
        environment["OMP_DISPLAY_ENV"] = "VERBOSE"
        environment.merge(settings) { $1 }
        let result = try TestSupport.runMR2CT(["bench", "--size", "16", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                                               "--iterations", "1", "--inference-runs", "1", "--threads", "2"],
                                              environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        // "  GOMP_SPINCOUNT = '10000'"
        guard let line = result.stderr.split(separator: "\n").first(where: { $0.contains("GOMP_SPINCOUNT =") }) else { return nil }
        return line.split(separator: "'").dropFirst().first.map(String.init)
    }
    #expect(try spinCount([:]) == "10000")
    #expect(try spinCount(["GOMP_SPINCOUNT": "77"]) == "77")
    #expect(try spinCount(["OMP_WAIT_POLICY": "ACTIVE"]) == "30000000000")   // libgomp's own value for ACTIVE
}
