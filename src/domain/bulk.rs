//! A bulk upload: many readings created together or not at all (DRF's `many=True`). Each item is
//! parsed as a single reading is ([`NewStation::parse`]); the upload is valid only when every item
//! is, and holds from one to the configured most items.

use serde_json::Value;

use crate::domain::station::{InvalidStation, NewStation};

/// Every reading of a valid upload, in input order: at least one, at most the configured limit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStations(Vec<NewStation>);

impl NewStations {
    /// The readings, in input order.
    pub fn as_slice(&self) -> &[NewStation] {
        &self.0
    }

    /// How many readings there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: an upload holds at least one reading; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first reading not named `station`, if any: what a token bound to `station` may not
    /// write.
    pub fn first_not_named(&self, station: &str) -> Option<&NewStation> {
        self.0
            .iter()
            .find(|reading| reading.name.as_ref() != station)
    }
}

/// Why an upload was refused, in DRF's shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum InvalidUpload {
    /// The upload as a whole: empty, or over the limit (`{"non_field_errors": [...]}`).
    Whole(InvalidStation),
    /// Some items: one entry per input item, `None` for the good ones (`[{}, {...}]`).
    Items(Vec<Option<InvalidStation>>),
}

/// Collects an upload's items one at a time, so a large upload is never held as parsed JSON:
/// each item is checked and kept as a [`NewStation`], or its errors are kept.
#[derive(Debug)]
pub struct UploadCollector {
    max_items: usize,
    seen: usize,
    readings: Vec<NewStation>,
    /// `(index, errors)` of the bad items only; most uploads have none.
    invalid: Vec<(usize, InvalidStation)>,
}

impl UploadCollector {
    /// A collector for an upload of at most `max_items` readings.
    pub fn new(max_items: usize) -> Self {
        Self {
            max_items,
            seen: 0,
            readings: Vec::new(),
            invalid: Vec::new(),
        }
    }

    /// Reserves room for `items` more readings, when the wire says how many come.
    pub fn expect(&mut self, items: usize) {
        self.readings.reserve(items.min(self.max_items));
    }

    /// Whether more items than allowed have been seen: the rest need not be checked.
    pub fn is_over_limit(&self) -> bool {
        self.seen > self.max_items
    }

    /// Checks the next item.
    pub fn push(&mut self, item: &Value) {
        let index = self.seen;
        self.seen += 1;
        if self.is_over_limit() {
            // Refused as a whole: neither the readings nor the errors matter any more.
            self.readings = Vec::new();
            self.invalid = Vec::new();
            return;
        }
        match NewStation::parse(item) {
            Ok(reading) if self.invalid.is_empty() => self.readings.push(reading),
            // Once one item is bad nothing is written: only the errors are worth keeping.
            Ok(_) => {}
            Err(errors) => {
                self.readings = Vec::new();
                self.invalid.push((index, errors));
            }
        }
    }

    /// The valid upload, or why it is refused.
    pub fn finish(self) -> Result<NewStations, InvalidUpload> {
        if self.seen == 0 {
            return Err(InvalidUpload::Whole(InvalidStation::non_field(
                "This list may not be empty.".to_owned(),
            )));
        }
        if self.is_over_limit() {
            return Err(InvalidUpload::Whole(InvalidStation::non_field(format!(
                "Ensure this field has no more than {} elements.",
                self.max_items
            ))));
        }
        if self.invalid.is_empty() {
            return Ok(NewStations(self.readings));
        }
        let mut items = vec![None; self.seen];
        for (index, errors) in self.invalid {
            if let Some(slot) = items.get_mut(index) {
                *slot = Some(errors);
            }
        }
        Err(InvalidUpload::Items(items))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reading(name: &str) -> Value {
        json!({"name": name, "timestamp": 1, "temperature": 1, "lat": 1, "lon": 1})
    }

    fn messages(invalid: &InvalidStation) -> Vec<(&'static str, String)> {
        invalid.errors().to_vec()
    }

    #[test]
    fn good_items_are_kept_in_input_order() {
        let mut upload = UploadCollector::new(3);
        for name in ["a", "b", "c"] {
            upload.push(&reading(name));
        }
        let readings = upload.finish().unwrap();
        let names: Vec<&str> = readings
            .as_slice()
            .iter()
            .map(|r| r.name.as_ref())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn errors_are_aligned_to_the_input_with_none_for_good_items() {
        let mut upload = UploadCollector::new(10);
        upload.push(&reading("a"));
        upload.push(&json!(7));
        upload.push(&reading(""));
        upload.push(&reading("d"));
        let Err(InvalidUpload::Items(items)) = upload.finish() else {
            panic!("refused item by item")
        };
        assert_eq!(items.len(), 4);
        assert!(items[0].is_none() && items[3].is_none());
        assert_eq!(
            messages(items[1].as_ref().unwrap()),
            [(
                "non_field_errors",
                "Invalid data. Expected a dictionary, but got int.".to_owned()
            )]
        );
        assert_eq!(
            messages(items[2].as_ref().unwrap()),
            [("name", "This field may not be blank.".to_owned())]
        );
    }

    #[test]
    fn an_empty_upload_and_one_over_the_limit_are_refused_as_a_whole() {
        let Err(InvalidUpload::Whole(empty)) = UploadCollector::new(2).finish() else {
            panic!("empty is refused")
        };
        assert_eq!(
            messages(&empty),
            [("non_field_errors", "This list may not be empty.".to_owned())]
        );
        let mut upload = UploadCollector::new(2);
        for _ in 0..3 {
            upload.push(&reading("a"));
        }
        assert!(upload.is_over_limit());
        let Err(InvalidUpload::Whole(over)) = upload.finish() else {
            panic!("over the limit is refused")
        };
        assert_eq!(
            messages(&over),
            [(
                "non_field_errors",
                "Ensure this field has no more than 2 elements.".to_owned()
            )]
        );
    }

    #[test]
    fn a_bound_station_finds_the_first_reading_of_another_name() {
        let mut upload = UploadCollector::new(3);
        for name in ["Kitchen", "Attic", "Kitchen"] {
            upload.push(&reading(name));
        }
        let readings = upload.finish().unwrap();
        assert_eq!(
            readings.first_not_named("Kitchen").map(|r| r.name.as_ref()),
            Some("Attic")
        );
        assert!(readings.first_not_named("Attic").is_some());
    }
}
