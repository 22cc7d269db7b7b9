//! Proves the stack's Cassandra is real: the scylla driver creates a keyspace and a
//! table, inserts rows and reads them back.

use anyhow::{Context, Result};
use homestream_tests::{StackEnv, random_name};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

#[tokio::test]
async fn keyspace_table_insert_select() -> Result<()> {
    let env = StackEnv::load()?;
    let session: Session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await
        .context("connecting to Cassandra")?;
    let keyspace = random_name("smoke").replace('-', "_");
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            &[],
        )
        .await?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.listings (id text PRIMARY KEY, price bigint, beds int)"
            ),
            &[],
        )
        .await?;
    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.listings (id, price, beds) VALUES (?, ?, ?)"
        ))
        .await?;
    session
        .execute_unpaged(&insert, ("z-1", 230_000_i64, 2_i32))
        .await?;
    session
        .execute_unpaged(&insert, ("z-2", 99_900_i64, 1_i32))
        .await?;

    let rows = session
        .query_unpaged(
            format!("SELECT id, price, beds FROM {keyspace}.listings"),
            &[],
        )
        .await?
        .into_rows_result()?;
    let mut listings: Vec<(String, i64, i32)> = rows
        .rows::<(String, i64, i32)>()?
        .collect::<Result<_, _>>()?;
    listings.sort();
    assert_eq!(
        listings,
        [
            ("z-1".to_owned(), 230_000, 2),
            ("z-2".to_owned(), 99_900, 1)
        ]
    );

    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await?;
    Ok(())
}
