// swift-tools-version:6.1
//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "task-status-bridge",
    products: [
        .library(name: "JSONPatch", targets: ["JSONPatch"]),
        .executable(name: "task-status-bridge", targets: ["TaskStatusBridgeCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
    ],
    targets: [
        // The JSON engine: JSON values, RFC 6901 pointers, RFC 6902 patches. No I/O.
        .target(name: "JSONPatch", swiftSettings: swiftSettings),
        // The executable: argument parsing and wiring only.
        .executableTarget(
            name: "TaskStatusBridgeCommand",
            dependencies: [
                "JSONPatch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "JSONPatchTests",
            dependencies: [
                "JSONPatch",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
