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
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
    ],
    targets: [
        // The JSON engine: JSON values, RFC 6901 pointers, RFC 6902 patches. No I/O.
        .target(name: "JSONPatch", swiftSettings: swiftSettings),
        // The TaskStatus schema, its hash-field codec, replies and error envelopes.
        .target(name: "TaskStatus", dependencies: ["JSONPatch"], swiftSettings: swiftSettings),
        // hiredis, Debian's libhiredis-dev: the module map and a shim header, nothing else.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // OpenSSL, Debian's libssl-dev: TLS under hiredis's reader (hiredis 0.14 has none). The
        // module map, and a shim of inline functions for OpenSSL's macros.
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        // A thread of its own that runs the jobs given to it: for blocking C calls, off the cooperative pool.
        .target(name: "WorkerThreads", swiftSettings: swiftSettings),
        // Redis access: the only module with unsafe pointers.
        .target(name: "Redis", dependencies: ["CHiredis", "COpenSSL", "WorkerThreads"], swiftSettings: swiftSettings),
        // The bridge: the consumer loop, the atomic commit, claiming, dead letters, trimming.
        .target(
            name: "Bridge",
            dependencies: [
                "JSONPatch", "TaskStatus", "Redis", "WorkerThreads",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP: the task-status API, health and metrics (Hummingbird 2), and the connection edge in
        // front of them (timeouts, limits, TLS) as NIO channel handlers.
        .target(
            name: "HTTPAPI",
            dependencies: [
                "Bridge", "JSONPatch", "TaskStatus",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load generator: a realistic request mix on either path, open-loop pacing, every reply checked.
        .target(
            name: "LoadTest",
            dependencies: [
                "Bridge", "JSONPatch", "Redis",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executable: argument parsing and wiring only.
        .executableTarget(
            name: "TaskStatusBridgeCommand",
            dependencies: [
                "JSONPatch", "TaskStatus", "Redis", "Bridge", "HTTPAPI", "LoadTest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Documents and requests the test targets share, and a raw TCP/TLS client for the HTTP edge.
        .target(
            name: "TestFixtures",
            dependencies: [
                "Bridge", "JSONPatch",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/TestFixtures",
            swiftSettings: swiftSettings
        ),
        // The bridge's decisions without Redis: the evaluator, memberwise patches, the commit
        // protocol, batch planning, the task cache, request decoding.
        .testTarget(
            name: "BridgeTests",
            dependencies: ["Bridge", "JSONPatch", "LoadTest", "TaskStatus", "Redis", "TestFixtures"],
            swiftSettings: swiftSettings
        ),
        // The command line's settings against their docs (and TLS files made by openssl); no Redis.
        .testTarget(
            name: "CommandTests",
            dependencies: [
                "TaskStatusBridgeCommand", "Bridge", "HTTPAPI", "TestFixtures", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "LoadTestTests", dependencies: ["LoadTest", "JSONPatch"], swiftSettings: swiftSettings),
        // The HTTP edge without Redis: the timeouts' state machine, and a server of test routes
        // behind the edge, driven by raw connections.
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "HTTPAPI", "JSONPatch", "TestFixtures",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Everything that needs a real redis-server (started by scripts/test) or a running bridge.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Bridge", "HTTPAPI", "JSONPatch", "LoadTest", "TaskStatus", "Redis", "TaskStatusBridgeCommand", "TestFixtures",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["SDK", "Deploy"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "RedisTests", dependencies: ["Redis"], swiftSettings: swiftSettings),
        .testTarget(name: "WorkerThreadsTests", dependencies: ["WorkerThreads"], swiftSettings: swiftSettings),
        .testTarget(name: "TaskStatusTests", dependencies: ["TaskStatus", "JSONPatch"], swiftSettings: swiftSettings),
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
