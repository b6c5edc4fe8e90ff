//! Uniform spatial grid over node positions, so a frame is evaluated only at receivers
//! that can possibly hear it (no O(N²) scan per frame).

use std::collections::HashMap;

use super::{NodeId, Position};

/// Nodes bucketed by square cells of `cell_m` metres.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    cell_m: f64,
    cells: HashMap<(i64, i64), Vec<NodeId>>,
}

impl Grid {
    pub(crate) fn new(cell_m: f64) -> Self {
        let cell_m = if cell_m.is_finite() && cell_m > 0.0 {
            cell_m
        } else {
            1000.0
        };
        Self {
            cell_m,
            cells: HashMap::new(),
        }
    }

    fn cell(&self, p: Position) -> (i64, i64) {
        // `as` saturates for huge or NaN values: such a node sits in an edge cell.
        (
            (p.x_m / self.cell_m).floor() as i64,
            (p.y_m / self.cell_m).floor() as i64,
        )
    }

    pub(crate) fn insert(&mut self, id: NodeId, p: Position) {
        let c = self.cell(p);
        self.cells.entry(c).or_default().push(id);
    }

    pub(crate) fn remove(&mut self, id: NodeId, p: Position) {
        let c = self.cell(p);
        if let Some(v) = self.cells.get_mut(&c) {
            v.retain(|n| *n != id);
        }
    }

    /// Every node in a cell that intersects the square of half-side `range_m` around `p`,
    /// in a deterministic order (cells row by row, nodes in insertion order).
    pub(crate) fn around(&self, p: Position, range_m: f64, out: &mut Vec<NodeId>) {
        let (cx, cy) = self.cell(p);
        let r = (range_m / self.cell_m).ceil();
        // Cap the scan: beyond this many cells per side the whole map is cheaper.
        let r = if r.is_finite() {
            r.min(1_000.0) as i64
        } else {
            1_000
        };
        if (2 * r + 1).pow(2) as usize > self.cells.len() * 4 {
            let mut keys: Vec<_> = self.cells.keys().copied().collect();
            keys.sort_unstable();
            for k in keys {
                if k.0.abs_diff(cx) <= r.unsigned_abs() && k.1.abs_diff(cy) <= r.unsigned_abs() {
                    out.extend_from_slice(&self.cells[&k]);
                }
            }
            return;
        }
        for y in cy.saturating_sub(r)..=cy.saturating_add(r) {
            for x in cx.saturating_sub(r)..=cx.saturating_add(r) {
                if let Some(v) = self.cells.get(&(x, y)) {
                    out.extend_from_slice(v);
                }
            }
        }
    }
}
