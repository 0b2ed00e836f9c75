//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The status page: plain HTML, CSS and JavaScript, no CDN, no toolchain.
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Tasks</title></head>
        <body><h1>Tasks</h1></body></html>
        """#
}
