import GRDB

/// The rows a purge (or its dry run) touches.
///
/// A filter is matched by `TopicFilter` in Swift once per distinct topic,
/// not once per row from SQL: a SQL function called for each of a million
/// rows made a purge take 23 s; grouping by topic first takes about half a
/// second, and the MQTT rules still live in one place.
struct PurgeSelection {
    let filter: TopicFilter?

    init(_ filter: TopicFilter?) {
        self.filter = filter
    }

    /// The topics that match, with their messages and bytes (empty list and
    /// a plain total when there is no filter).
    func tally(_ db: Database) throws -> (topics: [String], count: OutboxCounts) {
        guard let filter else {
            let row = try Row.fetchOne(db, sql: InspectionSQL.total)
            return ([], OutboxCounts(messages: row?["messages"] ?? 0, bytes: row?["bytes"] ?? 0))
        }
        var topics: [String] = []
        var count = OutboxCounts.zero
        let rows = try Row.fetchCursor(db, sql: InspectionSQL.byTopic)
        while let row = try rows.next() {
            let topic: String = row["topic"]
            guard filter.matches(topic) else { continue }
            topics.append(topic)
            count.messages += row["messages"] as Int
            count.bytes += row["bytes"] as Int
        }
        return (topics, count)
    }

    /// Deletes what `tally` found, inside the caller's transaction; returns
    /// the number of rows deleted.
    func delete(_ db: Database, topics: [String]) throws -> Int {
        guard filter != nil else {
            try db.execute(sql: "DELETE FROM message")
            return db.changesCount
        }
        // A temporary table (private to this connection, never in the
        // outbox file) holds the topics, so one scan deletes them all.
        try db.execute(sql: "CREATE TEMP TABLE purge_topic (topic TEXT PRIMARY KEY)")
        defer { try? db.execute(sql: "DROP TABLE temp.purge_topic") }
        let insert = try db.makeStatement(sql: "INSERT INTO temp.purge_topic (topic) VALUES (?)")
        for topic in topics {
            try insert.execute(arguments: [topic])
        }
        try db.execute(sql: "DELETE FROM message WHERE topic IN (SELECT topic FROM temp.purge_topic)")
        return db.changesCount
    }
}
