//! Trait merging: 2.x applies traits as JSON Merge Patches over the object (the trait wins);
//! 3.x merges traits first and lets the object's own properties win.

use serde_json::Value;

/// RFC 7386 JSON Merge Patch: `patch` overrides `target`, `null` deletes.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if let Some(existing) = t.get_mut(k) {
                    merge_patch(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// Deep merge where `over` wins on conflicts; objects merge key by key.
pub(crate) fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_lets_the_patch_win_and_null_delete() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": 9, "b": {"c": null, "e": 4}}));
        assert_eq!(t, json!({"a": 9, "b": {"d": 3, "e": 4}}));
    }

    #[test]
    fn deep_merge_lets_over_win() {
        let mut base = json!({"a": 1, "b": {"c": 2}});
        deep_merge(&mut base, &json!({"b": {"d": 3}, "a": 5}));
        assert_eq!(base, json!({"a": 5, "b": {"c": 2, "d": 3}}));
    }
}
