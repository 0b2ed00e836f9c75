//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Testing

@Suite("The list's query parameters in SailPoint's grammar")
struct ListQueryTests {
    func query(_ parameters: [(String, String)]) throws -> ListQuery {
        try ListQuery(parameters: parameters.map { (name: $0.0, value: $0.1) })
    }

    @Test("defaults: 250 newest first, no count, no filter")
    func defaults() throws {
        let q = try query([])
        #expect(q.limit == 250 && q.offset == 0 && !q.count && q.newestFirst && q.ids == nil && q.statuses == nil)
    }

    @Test("terms joined by and narrow each field; statuses in any letter case; isnull is the not-completed set")
    func filters() throws {
        let q = try query([
            (
                "filters",
                #"completionStatus in ("success", "Error") and completionStatus eq "ERROR" and id in ("a","b\"c") and type eq "qpoc" and launcher eq "x y""#
            ),
            ("sorters", "created"), ("limit", "7"), ("offset", "3"), ("count", "true"), ("ignored", "anything"),
        ])
        #expect(q.statuses == ["ERROR"])
        #expect(q.ids == ["a", "b\"c"])
        #expect(q.types == ["QPOC"])
        #expect(q.launchers == ["x y"])
        #expect(!q.newestFirst && q.limit == 7 && q.offset == 3 && q.count)
        #expect(try query([("filters", "completionStatus isnull")]).statuses == ["none"])
        #expect(try query([("filters", #"sourceId eq "s1""#)]).sourceIds == ["s1"])
    }

    @Test("a query's + is a space and %XX a byte, as forms and most clients write them")
    func formEncoding() throws {
        let parameters = ListQuery.parameters(fromQuery: #"filters=completionStatus+isnull+and+id+eq+%22a%2Bb%22&limit=5&count"#)
        #expect(parameters.map(\.name) == ["filters", "limit", "count"])
        #expect(parameters.map(\.value) == [#"completionStatus isnull and id eq "a+b""#, "5", ""])
        let q = try ListQuery(parameters: Array(parameters.prefix(2)))
        #expect(q.statuses == ["none"] && q.ids == ["a+b"] && q.limit == 5)
    }

    @Test(
        "what the list does not support is refused, naming it",
        arguments: [
            ("limit", "251", "limit"), ("offset", "-1", "offset"), ("count", "1", "count"), ("sorters", "-modified", "sorters"),
            ("filters", #"name eq "x""#, "name"), ("filters", #"id co "x""#, "co"), ("filters", #"id eq x"#, "quoted"),
            ("filters", #"id eq "x" or id eq "y""#, "and"), ("filters", #"launcher isnull"#, "isnull"), ("filters", #"id in ("a" "b")"#, ","),
            ("filters", #"completionStatus eq "done""#, "done"), ("filters", "", "empty"), ("filters", #"id eq "x"#, "closed"),
            ("filters", #"id eq "x" and"#, "field name"),
        ]
    )
    func refusals(name: String, value: String, says: String) {
        #expect {
            try query([(name, value)])
        } throws: { error in
            (error as? ListQuery.Invalid)?.description.contains(says) == true
        }
    }
}
