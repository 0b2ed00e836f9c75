//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// An SVG chart of a load test: latency (p50, p99, max; logarithmic) over time above, answers per
/// second below. Plain SVG 1.1, viewable in any browser.
public enum LatencyChart {
    public static func svg(_ report: LoadReport) -> String {
        let points = report.summary.timeline
        let width = 900.0
        let left = 70.0
        let right = 20.0
        let plotWidth = width - left - right
        let latencyTop = 40.0
        let latencyHeight = 260.0
        let rateTop = latencyTop + latencyHeight + 50
        let rateHeight = 120.0
        let height = rateTop + rateHeight + 50
        let maxSeconds = max(points.last?.seconds ?? 1, 1)
        func x(_ seconds: Double) -> Double { left + seconds / maxSeconds * plotWidth }

        let latencies = points.flatMap { [$0.p50, $0.p99, $0.max].compactMap { $0 } }.filter { $0 > 0 }
        let low = pow(10, floor(log10(latencies.min() ?? 0.1)))
        let high = pow(10, ceil(log10(max(latencies.max() ?? 1, low * 10))))
        func yLatency(_ ms: Double) -> Double {
            let clamped = min(max(ms, low), high)
            return latencyTop + latencyHeight * (1 - (log10(clamped) - log10(low)) / (log10(high) - log10(low)))
        }
        let topRate = max(points.map(\.throughput).max() ?? 1, 1) * 1.1
        func yRate(_ rate: Double) -> Double { rateTop + rateHeight * (1 - rate / topRate) }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="14">\(escape("Latency over time: \(report.path) path, \(report.mode)"))</text>

            """
        // Latency axis: one line per power of ten.
        var decade = low
        while decade <= high * 1.0001 {
            let y = yLatency(decade)
            svg += "<line x1=\"\(left)\" y1=\"\(f(y))\" x2=\"\(width - right)\" y2=\"\(f(y))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(label(decade)) ms</text>\n"
            decade *= 10
        }
        for (color, value) in [("#c0392b", \LoadSummary.Point.max), ("#e67e22", \LoadSummary.Point.p99), ("#2471a3", \LoadSummary.Point.p50)] {
            let path = points.compactMap { point in point[keyPath: value].map { "\(f(x(point.seconds))),\(f(yLatency($0)))" } }
            if !path.isEmpty {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path.joined(separator: " "))\"/>\n"
            }
        }
        for (index, (name, color)) in [("p50", "#2471a3"), ("p99", "#e67e22"), ("max", "#c0392b")].enumerated() {
            let lx = width - right - 190 + Double(index) * 65
            svg += "<line x1=\"\(f(lx))\" y1=\"16\" x2=\"\(f(lx + 18))\" y2=\"16\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(f(lx + 22))\" y=\"20\">\(name)</text>\n"
        }
        // Answers per second.
        svg += "<text x=\"\(left)\" y=\"\(f(rateTop - 10))\">answers per second (peak \(Int(topRate / 1.1)))</text>\n"
        let barWidth = max(1, plotWidth / Double(max(points.count, 1)) - 1)
        for point in points {
            let y = yRate(point.throughput)
            svg +=
                "<rect x=\"\(f(x(point.seconds) - barWidth))\" y=\"\(f(y))\" width=\"\(f(barWidth))\" height=\"\(f(rateTop + rateHeight - y))\" fill=\"#7fb3d5\"/>"
        }
        svg +=
            "\n<line x1=\"\(left)\" y1=\"\(f(rateTop + rateHeight))\" x2=\"\(width - right)\" y2=\"\(f(rateTop + rateHeight))\" stroke=\"#333\"/>\n"
        // Time axis.
        let step = max(1, (maxSeconds / 10).rounded(.up))
        var second = 0.0
        while second <= maxSeconds {
            svg += "<text x=\"\(f(x(second)))\" y=\"\(f(rateTop + rateHeight + 16))\" text-anchor=\"middle\">\(Int(second)) s</text>"
            second += step
        }
        svg += "\n</svg>\n"
        return svg
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    private static func label(_ value: Double) -> String {
        value >= 1 ? String(Int(value)) : String(format: "%g", value)
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
