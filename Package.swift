// swift-tools-version: 6.0
// MR2CT: MR to synthetic-CT conversion with an unpaired CycleGAN, in Swift on OpenBLAS.
import PackageDescription

/// The numeric modules' hot loops run on unsafe buffer pointers; dynamic exclusivity checks only slow them.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "MR2CT",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mr2ct", targets: ["mr2ct"]),
        .library(name: "NIfTI", targets: ["NIfTI"]),
        .library(name: "NeuralNetwork", targets: ["NeuralNetwork"]),
        .library(name: "CycleGAN", targets: ["CycleGAN"]),
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
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // oneDNN (Debian libdnnl-dev 2.6, OpenMP build) behind a small C API of plain floats (issue 20).
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),

        // MARK: Libraries
        .target(name: "MR2CTSupport"),
        .target(name: "NIfTI", dependencies: ["CNIfTI", "MR2CTSupport"]),
        .target(name: "Safetensors", dependencies: ["MR2CTSupport"]),
        .target(name: "NeuralNetwork", dependencies: ["COpenBLAS", "CDNNL", "Safetensors", "MR2CTSupport"], swiftSettings: numericSettings),
        .target(name: "Preprocessing", dependencies: ["NIfTI", "MR2CTSupport"], swiftSettings: numericSettings),
        .target(name: "Reporting", dependencies: ["CPNG", "MR2CTSupport"]),
        .target(name: "Evaluation", dependencies: ["NIfTI"], swiftSettings: numericSettings),
        .target(name: "CycleGAN", dependencies: ["NeuralNetwork", "Safetensors", "Preprocessing", "NIfTI", "Reporting", "Evaluation", "MR2CTSupport"],
                swiftSettings: numericSettings),
        .target(name: "Conversion", dependencies: ["CycleGAN", "Preprocessing", "NIfTI", "Reporting", "Evaluation", "MR2CTSupport"],
                swiftSettings: numericSettings),
        .target(name: "Phantom", dependencies: ["NIfTI", "Reporting", "MR2CTSupport"], swiftSettings: numericSettings),
        // Issue 17: the model-agnostic training layer and the DC-GAN / conditional-GAN families on it.
        .target(name: "Training", dependencies: ["NeuralNetwork", "Safetensors", "Reporting", "MR2CTSupport"]),
        .target(name: "DCGAN", dependencies: ["Training", "NeuralNetwork", "Safetensors", "NIfTI", "Reporting", "MR2CTSupport"],
                swiftSettings: numericSettings),

        // MARK: The command-line tool: argument parsing only, no logic of its own
        .executableTarget(
            name: "mr2ct",
            dependencies: [
                "NIfTI", "Preprocessing", "NeuralNetwork", "CycleGAN", "Conversion", "Phantom", "Reporting", "Evaluation",
                "MR2CTSupport",
                "Training", "DCGAN",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Fuzzing (issue 9): libFuzzer entry points, replay tools in ordinary builds (see Tests/Fuzz/README.md)
        .executableTarget(name: "SafetensorsFuzzer", dependencies: ["Safetensors"]),
        .executableTarget(name: "FuzzNIfTIReader", dependencies: ["NIfTI"]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["NIfTI", "Safetensors"], path: "Tests/TestSupport",
                resources: [.copy("Fixtures")]),
        .testTarget(name: "MR2CTSupportTests", dependencies: ["MR2CTSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "NIfTI", "TestSupport"]),
        .testTarget(name: "NIfTITests", dependencies: ["NIfTI", "TestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "TestSupport"]),
        .testTarget(name: "NeuralNetworkTests", dependencies: ["NeuralNetwork", "Safetensors", "TestSupport"]),
        .testTarget(name: "PreprocessingTests", dependencies: ["Preprocessing", "NIfTI", "TestSupport"]),
        .testTarget(name: "CycleGANTests", dependencies: ["CycleGAN", "NeuralNetwork", "MR2CTSupport", "TestSupport"]),
        .testTarget(name: "ConversionTests", dependencies: ["Conversion", "CycleGAN", "NeuralNetwork", "Preprocessing", "NIfTI",
                                                             "Safetensors", "TestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "TestSupport"]),
        .testTarget(name: "PhantomTests", dependencies: ["Phantom", "NIfTI", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "NeuralNetwork", "TestSupport"]),
        .testTarget(name: "DCGANTests", dependencies: ["DCGAN", "Training", "NeuralNetwork", "Safetensors", "NIfTI", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "NIfTI", "Safetensors"]),
    ],
    swiftLanguageModes: [.v6]
)
