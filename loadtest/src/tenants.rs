//! Chooses the tenant (API key) of each request: smooth weighted round-robin, so tenants
//! with equal weights simply alternate and heavier ones are spread out, not bunched.

use crate::config::Tenant;

#[derive(Clone, Debug)]
pub struct TenantRotation {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl TenantRotation {
    /// Weights of zero count as one; an empty list is the caller's bug.
    pub fn new(tenants: &[Tenant]) -> Self {
        assert!(!tenants.is_empty(), "at least one tenant");
        let weights: Vec<i64> = tenants
            .iter()
            .map(|tenant| i64::from(tenant.weight.max(1)))
            .collect();
        Self {
            total: weights.iter().sum(),
            current: vec![0; weights.len()],
            weights,
        }
    }

    /// Index of the tenant of the next request.
    pub fn next_index(&mut self) -> usize {
        let mut best = 0;
        for (i, weight) in self.weights.iter().enumerate() {
            self.current[i] += weight;
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation_of(weights: &[u32]) -> TenantRotation {
        let tenants: Vec<Tenant> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Tenant {
                api_key: format!("key-{i}"),
                weight,
            })
            .collect();
        TenantRotation::new(&tenants)
    }

    #[test]
    fn equal_weights_alternate() {
        let mut rotation = rotation_of(&[1, 1, 1]);
        let picks: Vec<usize> = (0..6).map(|_| rotation.next_index()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_set_the_shares_and_picks_are_spread() {
        let mut rotation = rotation_of(&[3, 1]);
        let picks: Vec<usize> = (0..8).map(|_| rotation.next_index()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 0, 0, 1, 0]);

        let mut rotation = rotation_of(&[5, 2, 1]);
        let mut counts = [0; 3];
        for _ in 0..800 {
            counts[rotation.next_index()] += 1;
        }
        assert_eq!(counts, [500, 200, 100]);
    }

    #[test]
    fn a_single_tenant_gets_everything() {
        let mut rotation = rotation_of(&[7]);
        assert!((0..10).all(|_| rotation.next_index() == 0));
    }
}
