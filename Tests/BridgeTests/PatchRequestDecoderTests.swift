//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import TaskStatus
import Testing

@Suite("Decoding stream entries")
struct PatchRequestDecoderTests {
    let decoder = PatchRequestDecoder(limits: RequestLimits(), requireExperimentalFlag: true)

    func decode(_ fields: [(String, String)]) -> PatchRequest {
        let bytes = fields.map { (Array($0.0.utf8), Array($0.1.utf8)) }
        return decoder.decode(entryId: "1-0", fields: bytes.map { ($0.0[...], $0.1[...]) })
    }

    @Test("field names match in any letter case")
    func anyCase() {
        let request = decode([("ID", "t1"), ("Patch", "[]"), ("Request-ID", "r1"), ("X-SailPoint-Experimental", "true")])
        #expect(request.rejection == nil)
        #expect(request.taskId == "t1")
        #expect(request.requestId == "r1")
    }

    @Test("only letters fold: a control character or a digit never stands for a dash or a letter")
    func onlyLettersFold() {
        // 0x0D | 0x20 is '-', 0x10 | 0x20 is '0': neither may match.
        let request = decode([("id", "t1"), ("patch", "[]"), ("request\rid", "forged"), ("x-sailpoint-experimental", "true")])
        #expect(request.requestId == "1-0", "\"request\\rid\" was read as request-id")
        let spaced = decode([("id", "t1"), ("patch", "[]"), ("request\u{0D}id", "x"), ("x\u{0D}sailpoint\u{0D}experimental", "true")])
        #expect(spaced.rejection?.status == 400)
        let notALetter = decode([("\u{09}d", "t1"), ("patch", "[]"), ("x-sailpoint-experimental", "true")])
        #expect(notALetter.rejection?.status == 400, "a tab was read as the letter i")
    }

    @Test("a task id starting with } is refused: the task's keys would fall in different Cluster slots")
    func closingBraceFirst() {
        let request = decode([("id", "}t1"), ("patch", "[]"), ("x-sailpoint-experimental", "true")])
        #expect(request.rejection?.status == 400)
        #expect(request.rejection.map { String(decoding: $0.body, as: UTF8.self) }?.contains("must not start with }") == true)
        // Braces elsewhere keep every key of the task on one slot (the tag ends at the first }).
        for id in ["t}1", "{t1}", "t{1"] {
            #expect(decode([("id", id), ("patch", "[]"), ("x-sailpoint-experimental", "true")]).rejection == nil, "\(id)")
        }
    }
}
