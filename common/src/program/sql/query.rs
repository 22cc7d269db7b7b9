//! The shape a SQL program may take, checked on its syntax tree with the position of
//! each offence: one query over `records`, possibly in stages (`WITH`, derived tables),
//! that maps or filters each record on its own. What would mix records of a batch
//! (joins, grouping, aggregates, window functions, ordering, `LIMIT`, `DISTINCT`, set
//! operations, subqueries in expressions) has no meaning over a batch cut by timing, so
//! it is refused; so is `now()`, which a plan kept for the pod's life would freeze.
//!
//! The checked tree is then rewritten to carry the hidden row number through every
//! `SELECT`, so each output row can be traced to its input record.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, Spanned, TableFactor,
    visit_expressions,
};
use datafusion::sql::sqlparser::tokenizer::Span;
use homestream_crds::streamtransform::sql::TABLE;

use super::schema::ROW_COLUMN;
use crate::program::Diagnostic;

/// Functions whose value a long-lived plan would fix at the time it was planned.
const FROZEN_FUNCTIONS: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "today",
];

/// Checks the query and adds the row number to each of its `SELECT`s.
///
/// `is_aggregate` tells an aggregate function's name (lower case) from a scalar one's.
///
/// # Errors
/// Each offence, at its position.
pub fn check_and_carry_rows(
    query: &mut Query,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Result<(), Vec<Diagnostic>> {
    let mut problems = Vec::new();
    check_expressions(query, is_aggregate, &mut problems);
    let mut checker = Checker {
        problems,
        stages: HashSet::new(),
    };
    checker.query(query);
    if checker.problems.is_empty() {
        Ok(())
    } else {
        Err(checker.problems)
    }
}

/// A diagnostic at the start of `span`, or at the start of the query when the parser
/// recorded no position.
pub fn at(span: Span, message: impl Into<String>) -> Diagnostic {
    at_position(span.start.line, span.start.column, message)
}

/// A diagnostic at a 1-based line and column; line 0 (no position) is the start.
pub fn at_position(line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
    let valid = line > 0;
    Diagnostic {
        line: if valid { to_usize(line) } else { 1 },
        column: if valid { to_usize(column) } else { 1 },
        message: message.into(),
    }
}

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

fn check_expressions(
    query: &Query,
    is_aggregate: &dyn Fn(&str) -> bool,
    problems: &mut Vec<Diagnostic>,
) {
    let _ = visit_expressions(query, |expr| {
        match expr {
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
                problems.push(at(
                    expr.span(),
                    "a subquery in an expression is not allowed: it would read other records of the batch",
                ));
            }
            Expr::Function(function) => {
                let name = function.name.to_string().to_lowercase();
                if function.over.is_some() {
                    problems.push(at(
                        expr.span(),
                        format!("window function {name}(...) OVER is not allowed: a batch is not a window"),
                    ));
                } else if is_aggregate(&name) {
                    problems.push(at(
                        expr.span(),
                        format!("aggregate function {name} is not allowed: each record is transformed on its own"),
                    ));
                } else if FROZEN_FUNCTIONS.contains(&name.as_str()) {
                    problems.push(at(
                        expr.span(),
                        format!("{name}() is not allowed: its value would be fixed when the program is planned; use _timestamp, the record's Kafka timestamp"),
                    ));
                }
            }
            Expr::Identifier(ident) if ident.value.starts_with("__") => {
                problems.push(reserved(ident));
            }
            Expr::CompoundIdentifier(parts) => {
                if let Some(ident) = parts.iter().find(|part| part.value.starts_with("__")) {
                    problems.push(reserved(ident));
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

fn reserved(ident: &Ident) -> Diagnostic {
    at(
        ident.span,
        format!(
            "{} is reserved: names starting with __ are the runtime's",
            ident.value
        ),
    )
}

/// Walks the relations of the query, the only ones it may read being `records` and its
/// own stages, and refuses the clauses that mix records.
struct Checker {
    problems: Vec<Diagnostic>,
    /// The `WITH` stages in scope.
    stages: HashSet<String>,
}

impl Checker {
    fn refuse(&mut self, span: Span, what: &str, why: &str) {
        self.problems
            .push(at(span, format!("{what} is not allowed: {why}")));
    }

    fn query(&mut self, query: &mut Query) {
        let mixes = "each record is transformed on its own, and a batch's records are only those that arrived together";
        if let Some(order_by) = &query.order_by {
            self.refuse(
                order_by.span(),
                "ORDER BY",
                "output keeps the input's order",
            );
        }
        if let Some(limit) = &query.limit_clause {
            self.refuse(limit.span(), "LIMIT/OFFSET", mixes);
        }
        if let Some(fetch) = &query.fetch {
            self.refuse(fetch.span(), "FETCH", mixes);
        }
        if !query.pipe_operators.is_empty() || !query.locks.is_empty() {
            self.refuse(
                query.span(),
                "this clause",
                "only SELECT ... FROM records is",
            );
        }
        let outer_stages = self.stages.clone();
        if let Some(with) = &mut query.with {
            if with.recursive {
                self.refuse(with.span(), "WITH RECURSIVE", mixes);
            }
            for stage in &mut with.cte_tables {
                self.query(&mut stage.query);
                self.stages.insert(stage.alias.name.value.clone());
            }
        }
        self.set_expr(&mut query.body);
        self.stages = outer_stages;
    }

    fn set_expr(&mut self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(query) => self.query(query),
            SetExpr::SetOperation { .. } => self.refuse(
                body.span(),
                "UNION, INTERSECT or EXCEPT",
                "the query reads records once",
            ),
            other => self.refuse(
                other.span(),
                "this query",
                "only SELECT ... FROM records is",
            ),
        }
    }

    fn select(&mut self, select: &mut Select) {
        let mixes = "each record is transformed on its own";
        if select.distinct.is_some() {
            self.refuse(select.span(), "DISTINCT", mixes);
        }
        if select.top.is_some() {
            self.refuse(select.span(), "TOP", mixes);
        }
        if select.into.is_some() {
            self.refuse(
                select.span(),
                "SELECT INTO",
                "the output is the output topic",
            );
        }
        match &select.group_by {
            GroupByExpr::Expressions(expressions, _) if expressions.is_empty() => {}
            group_by => self.refuse(group_by.span(), "GROUP BY", mixes),
        }
        if let Some(having) = &select.having {
            self.refuse(having.span(), "HAVING", mixes);
        }
        if let Some(qualify) = &select.qualify {
            self.refuse(qualify.span(), "QUALIFY", mixes);
        }
        if !select.named_window.is_empty()
            || !select.sort_by.is_empty()
            || !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.lateral_views.is_empty()
            || !select.connect_by.is_empty()
        {
            self.refuse(select.span(), "this clause", mixes);
        }
        match select.from.as_mut_slice() {
            [] => self.refuse(
                select.span(),
                "a SELECT without FROM",
                "the query reads FROM records",
            ),
            [from] => {
                if let Some(join) = from.joins.first() {
                    self.refuse(
                        join.relation.span(),
                        "a join",
                        "the query reads records alone",
                    );
                }
                self.relation(&mut from.relation);
            }
            [_, second, ..] => self.refuse(
                second.relation.span(),
                "a second relation",
                "the query reads records alone",
            ),
        }
        let passes_everything = select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        if !passes_everything {
            select
                .projection
                .push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(
                    ROW_COLUMN,
                ))));
        }
    }

    fn relation(&mut self, relation: &mut TableFactor) {
        match relation {
            TableFactor::Table { name, args, .. } => {
                let name_text = name.to_string();
                if args.is_some() {
                    self.refuse(
                        relation.span(),
                        "a table function",
                        "the query reads FROM records",
                    );
                } else if name_text != TABLE && !self.stages.contains(&name_text) {
                    self.problems.push(at(
                        relation.span(),
                        format!("unknown relation {name_text}: the query reads FROM {TABLE} (or a WITH stage over it)"),
                    ));
                }
            }
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            other => self.refuse(
                other.span(),
                "this relation",
                "the query reads FROM records",
            ),
        }
    }
}
