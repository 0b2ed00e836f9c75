//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Testing

@testable import Redis

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test(
        "URLs parse into endpoint, credentials and database",
        arguments: [
            ("redis://127.0.0.1:6379/0", RedisConfiguration.Endpoint.tcp(host: "127.0.0.1", port: 6379), nil as String?, nil as String?, 0),
            ("redis://localhost", .tcp(host: "localhost", port: 6379), nil, nil, 0),
            ("redis://bridge:s3cr%40t@redis.internal:7000/3", .tcp(host: "redis.internal", port: 7000), "bridge", "s3cr@t", 3),
            ("redis://:only-password@h:1/", .tcp(host: "h", port: 1), nil, "only-password", 0),
            ("redis://bridge@h:1/", .tcp(host: "h", port: 1), "bridge", nil, 0),
            ("redis://[::1]:6380/2", .tcp(host: "::1", port: 6380), nil, nil, 2),
            ("unix:///var/run/redis.sock", .unix(path: "/var/run/redis.sock"), nil, nil, 0),
            ("unix://u:p@/tmp/r.sock?db=5", .unix(path: "/tmp/r.sock"), "u", "p", 5),
        ]
    )
    func parses(url: String, endpoint: RedisConfiguration.Endpoint, user: String?, password: String?, database: Int) throws {
        let configuration = try RedisConfiguration(url: url)
        #expect(configuration.endpoint == endpoint)
        #expect(configuration.username == user)
        #expect(configuration.password == password)
        #expect(configuration.database == database)
    }

    @Test(
        "bad URLs are refused with a reason, and never echo the password",
        arguments: [
            ("127.0.0.1:6379", "expected redis://"), ("http://h", "unknown scheme"), ("redis://h:port", "the port must be a number"),
            ("redis://h:70000", "between 1 and 65535"), ("redis://h/x", "database number"), ("rediss://h:x", "the port must be a number"),
            ("unix://relative", "absolute"), ("redis://:secret@:1", "the host is missing"),
        ]
    )
    func refuses(url: String, reason: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains(reason), "\(error.message)")
            #expect(!error.message.contains("secret"))
        }
    }

    @Test("rediss:// turns TLS on with the system's trust store and full verification; redis:// leaves it off")
    func tlsScheme() throws {
        let secure = try RedisConfiguration(url: "rediss://bridge:pw@redis.example.com:6380/1")
        #expect(secure.tls == RedisTLSConfiguration())
        #expect(secure.tls?.verifiesPeer == true)
        #expect(secure.tls?.caFile == nil)
        #expect(secure.endpoint == .tcp(host: "redis.example.com", port: 6380))
        #expect(secure.description == "rediss://bridge:***@redis.example.com:6380/1")
        #expect(try RedisConfiguration(url: "redis://h").tls == nil)
    }

    @Test(
        "the name verified: the configured server name, else a DNS host, else the seed's DNS name for a node reported by IP, else the IP",
        arguments: [
            (nil as String?, "redis.example.com", nil as String?, "redis.example.com"),
            ("cache.windows.net", "10.0.0.5", nil, "cache.windows.net"),
            (nil, "10.0.0.5", "cluster.example.com", "cluster.example.com"),
            (nil, "10.0.0.5", "10.0.0.1", "10.0.0.5"),
            (nil, "::1", nil, "::1"),
            (nil, "node-1.internal", "seed.example.com", "node-1.internal"),
        ]
    )
    func verifiedName(serverName: String?, host: String, seed: String?, expected: String) {
        var tls = RedisTLSConfiguration(serverName: serverName)
        tls.seedName = seed
        #expect(tls.verifiedName(forHost: host, seedName: tls.seedName) == expected)
    }

    @Test("the description hides the password")
    func redacted() throws {
        #expect(try RedisConfiguration(url: "redis://user:pw@h:1/2").description == "redis://user:***@h:1/2")
    }
}

@Suite("Pacing the reads of long pipelines")
struct ReplyPacerTests {
    @Test("short pipelines teach nothing; long ones set the estimate, then move it a fifth of the way")
    func estimate() {
        var pacer = ReplyPacer()
        pacer.record(bytes: ReplyPacer.threshold - 1, elapsed: .seconds(1))
        #expect(pacer.nanosecondsPerByte == 0, "a short pipeline says nothing about Redis's pace")
        pacer.record(bytes: 100_000, elapsed: .milliseconds(1))
        #expect(pacer.nanosecondsPerByte == 10)
        pacer.record(bytes: 100_000, elapsed: .milliseconds(6))
        #expect(abs(pacer.nanosecondsPerByte - (10 * 0.8 + 60 * 0.2)) < 1e-9)
    }
}
