// swift-tools-version: 6.0
// MR2CT: MR to synthetic-CT conversion with an unpaired CycleGAN, in Swift on OpenBLAS.
import Foundation
import PackageDescription

/// Whether the numeric modules are compiled for AVX2 (`-target-cpu haswell`: AVX2, FMA, BMI2, F16C, MOVBE — the
/// x86-64-v3 level): on an x86-64 machine whose CPU has them, unless `MR2CT_PORTABLE=1` asks for baseline x86-64
/// (for binaries copied to older CPUs). Swift's vector loops and SIMD8 arithmetic then run 8 floats wide instead
/// of SSE's 4. Swift never contracts a·b + c into an FMA and never reorders floating-point reductions without
/// explicit opt-in, so the results are the same bits either way.
let buildsForAVX2: Bool = {
    #if arch(x86_64) && os(Linux)
    if ProcessInfo.processInfo.environment["MR2CT_PORTABLE"] == "1" { return false }
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
    let present = Set(flags.split(separator: " ").map(String.init))
    // ("abm": how /proc/cpuinfo names LZCNT.)
    return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"].allSatisfy(present.contains)
    #else
    return false
    #endif
}()

/// The numeric modules' hot loops run on unsafe buffer pointers; dynamic exclusivity checks only slow them.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"] + (buildsForAVX2 ? ["-target-cpu", "haswell"] : []),
                 .when(configuration: .release)),
]

let package = Package(
    name: "MR2CT",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mr2ct", targets: ["mr2ct"]),
        .library(name: "NIfTI", targets: ["NIfTI"]),
        .library(name: "NeuralNetwork", targets: ["NeuralNetwork"]),
        .library(name: "CycleGAN", targets: ["CycleGAN"]),
        .library(name: "SyntheticCT", targets: ["SyntheticCT"]),
        .library(name: "Conversion", targets: ["Conversion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: C bridges (no C type crosses into a public Swift API)
        .target(
            name: "CNIfTI",
            // Debian's headers include <znzlib.h> in angle brackets: shim.c sees /usr/include/nifti.
            cSettings: [.unsafeFlags(["-I/usr/include/nifti"])],
            linkerSettings: [
                .linkedLibrary("nifti2"), .linkedLibrary("znz"),
                .linkedLibrary("z"), .linkedLibrary("m"),
            ]
        ),
        // Issue 19: DCMTK (Debian libdcmtk-dev, C++) behind a plain-C API; C++ only inside this target.
        .target(
            name: "CDCMTK",
            linkerSettings: [
                .linkedLibrary("dcmdata"), .linkedLibrary("dcmimgle"), .linkedLibrary("dcmjpeg"), .linkedLibrary("dcmjpls"),
                .linkedLibrary("ijg8"), .linkedLibrary("ijg12"), .linkedLibrary("ijg16"), .linkedLibrary("dcmtkcharls"),
                .linkedLibrary("oflog"), .linkedLibrary("ofstd"), .linkedLibrary("z"), .linkedLibrary("stdc++"),
            ]
        ),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // oneDNN (Debian libdnnl-dev 2.6, OpenMP build) behind a small C API of plain floats (issue 20), opened with
        // dlopen at its first use (shim.c says why), so not linked.
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dl")]),
        // Issue 21: Open MPI (Debian libopenmpi-dev) behind a few plain-C collectives; MPI types only inside it.
        .target(
            name: "CMPI",
            // Debian keeps mpi.h in the architecture's openmpi/include (x86_64 and arm64 builds).
            cSettings: [.unsafeFlags(["-I/usr/lib/x86_64-linux-gnu/openmpi/include", "-I/usr/lib/aarch64-linux-gnu/openmpi/include"])],
            linkerSettings: [.linkedLibrary("mpi")]
        ),

        // MARK: Libraries
        .target(name: "MR2CTSupport"),
        .target(name: "NIfTI", dependencies: ["CNIfTI", "MR2CTSupport"]),
        .target(name: "Safetensors", dependencies: ["MR2CTSupport"]),
        .target(name: "DICOM", dependencies: ["CDCMTK", "NIfTI", "MR2CTSupport"]),
        // Every command's input reader: NIfTI files and DICOM series into one Volume type.
        .target(name: "VolumeIO", dependencies: ["DICOM", "NIfTI", "MR2CTSupport"]),
        .target(name: "NeuralNetwork", dependencies: ["COpenBLAS", "CDNNL", "Safetensors", "MR2CTSupport"], swiftSettings: numericSettings),
        // The networks of the GAN recipes (ResnetGenerator, NLayerDiscriminator, their configurations) on the engine.
        .target(name: "Networks", dependencies: ["NeuralNetwork", "MR2CTSupport"], swiftSettings: numericSettings),
        .target(name: "Preprocessing", dependencies: ["NIfTI", "MR2CTSupport"], swiftSettings: numericSettings),
        .target(name: "Reporting", dependencies: ["CPNG", "MR2CTSupport"]),
        .target(name: "Evaluation", dependencies: ["NIfTI"], swiftSettings: numericSettings),
        .target(name: "Conversion", dependencies: ["SyntheticCT", "CycleGAN", "Networks", "NeuralNetwork", "Preprocessing", "NIfTI", "VolumeIO", "DICOM",
                                                   "Reporting", "Evaluation", "MR2CTSupport"],
                swiftSettings: numericSettings),
        .target(name: "Phantom", dependencies: ["NIfTI", "Reporting", "MR2CTSupport"], swiftSettings: numericSettings),
        // Issue 17: the model-agnostic training layer, the GAN families on it (CycleGAN; DC-GAN and conditional
        // GAN), and the MR/CT domain on the CycleGAN family (SyntheticCT: training sessions, presets, validation,
        // the MR→CT model file and VolumeTranslator), which Conversion and the tool use.
        // Issue 21: data-parallel training on MPI (communicator, bucketed gradient all-reduce) for the Training layer.
        .target(name: "DataParallel", dependencies: ["CMPI", "NeuralNetwork"]),
        .target(name: "Training", dependencies: ["DataParallel", "NeuralNetwork", "Safetensors", "Reporting", "MR2CTSupport"]),
        .target(name: "CycleGAN", dependencies: ["Training", "Networks", "NeuralNetwork", "Safetensors", "MR2CTSupport"],
                swiftSettings: numericSettings),
        .target(name: "SyntheticCT", dependencies: ["CycleGAN", "Training", "DataParallel", "Networks", "NeuralNetwork", "Safetensors", "Preprocessing", "NIfTI", "VolumeIO",
                                                    "Reporting", "Evaluation", "MR2CTSupport"],
                swiftSettings: numericSettings),
        .target(name: "DCGAN", dependencies: ["Training", "NeuralNetwork", "Safetensors", "NIfTI", "Reporting", "MR2CTSupport"],
                swiftSettings: numericSettings),
        // Issue 18: paired (pix2pix) MR→CT training on the Training layer.
        .target(name: "Pix2Pix", dependencies: ["Training", "DataParallel", "SyntheticCT", "CycleGAN", "Networks", "Conversion", "NeuralNetwork", "Preprocessing", "NIfTI", "VolumeIO",
                                                "Evaluation", "Reporting", "MR2CTSupport"],
                swiftSettings: numericSettings),

        // MARK: The command-line tool: argument parsing only, no logic of its own
        .executableTarget(
            name: "mr2ct",
            dependencies: [
                "NIfTI", "Preprocessing", "NeuralNetwork", "Networks", "CycleGAN", "SyntheticCT", "Conversion", "Phantom", "Reporting", "Evaluation",
                "MR2CTSupport", "VolumeIO", "DICOM",
                "Training", "DCGAN", "Pix2Pix", "DataParallel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Fuzzing (issue 9): libFuzzer entry points, replay tools in ordinary builds (see Tests/Fuzz/README.md)
        .target(name: "FuzzingSupport"),
        .executableTarget(name: "SafetensorsFuzzer", dependencies: ["Safetensors", "FuzzingSupport"]),
        .executableTarget(name: "FuzzNIfTIReader", dependencies: ["NIfTI"]),
        // Issue 19: the DICOM reader's harness (a library, so that the test suite replays the corpus in-process).
        .target(name: "DICOMFuzzing", dependencies: ["VolumeIO", "DICOM", "NIfTI"]),
        .executableTarget(name: "FuzzDICOMReader", dependencies: ["DICOMFuzzing", "FuzzingSupport"]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["NIfTI", "Safetensors"], path: "Tests/TestSupport",
                resources: [.copy("Fixtures")]),
        .testTarget(name: "MR2CTSupportTests", dependencies: ["MR2CTSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "NIfTI", "TestSupport"]),
        .testTarget(name: "NIfTITests", dependencies: ["NIfTI", "TestSupport"]),
        .testTarget(name: "DICOMTests", dependencies: ["DICOM", "DICOMFuzzing", "VolumeIO", "NIfTI", "TestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "TestSupport"]),
        .testTarget(name: "NeuralNetworkTests", dependencies: ["NeuralNetwork", "Networks", "Safetensors", "TestSupport"]),
        .testTarget(name: "PreprocessingTests", dependencies: ["Preprocessing", "NIfTI", "TestSupport"]),
        .testTarget(name: "CycleGANTests", dependencies: ["CycleGAN", "Training", "Networks", "NeuralNetwork", "MR2CTSupport", "TestSupport"]),
        .testTarget(name: "SyntheticCTTests", dependencies: ["SyntheticCT", "CycleGAN", "Training", "Networks", "NeuralNetwork",
                                                             "Safetensors", "MR2CTSupport", "NIfTI", "TestSupport"]),
        .testTarget(name: "ConversionTests", dependencies: ["Conversion", "SyntheticCT", "CycleGAN", "Networks", "NeuralNetwork", "Preprocessing", "NIfTI",
                                                             "Safetensors", "TestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "TestSupport"]),
        .testTarget(name: "PhantomTests", dependencies: ["Phantom", "NIfTI", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "DataParallel", "NeuralNetwork", "TestSupport"]),
        .testTarget(name: "DCGANTests", dependencies: ["DCGAN", "Training", "NeuralNetwork", "Safetensors", "NIfTI", "TestSupport"]),
        .testTarget(name: "Pix2PixTests", dependencies: ["Pix2Pix", "Training", "SyntheticCT", "CycleGAN", "Networks", "NeuralNetwork", "Preprocessing",
                                                         "NIfTI", "Safetensors", "MR2CTSupport", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "NIfTI", "Safetensors", "DICOM"]),
    ],
    swiftLanguageModes: [.v6]
)
