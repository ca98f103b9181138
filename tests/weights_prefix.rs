//! An LSTM saved inside a whole model's state dict, its keys under the module's path
//! (`encoder.lstm.weight_ih_l0`): found when it is the only one, loaded by its prefix when named,
//! and a typed error listing the prefixes when the choice is the caller's.

use std::path::{Path, PathBuf};

use lstm_wgpu::weights::{lstm_prefixes, lstm_prefixes_in_bytes};
use lstm_wgpu::{Error, LstmConfig, LstmWeights};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// A one-layer LSTM with 3 inputs and 5 units.
fn encoder() -> LstmWeights<f32> {
    LstmWeights::init_uniform(LstmConfig::new(3, 5, 1).unwrap(), 1)
}

/// A two-layer bidirectional, projected LSTM: every kind of key goes through the prefix.
fn decoder() -> LstmWeights<f32> {
    let config = LstmConfig::new(4, 6, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(2)
        .unwrap();
    LstmWeights::init_uniform(config, 2)
}

/// A state dict's tensors: every tensor of `lstm` under `prefix`.
fn lstm_entries(prefix: &str, lstm: &LstmWeights<f32>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    lstm.named_tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.iter().copied().collect();
            (format!("{prefix}{name}"), view.shape().to_vec(), values)
        })
        .collect()
}

/// A dense layer beside the LSTMs, as a model has: keys that belong to no LSTM.
fn unrelated_entries() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    vec![
        ("fc.weight".into(), vec![2, 5], vec![0.5; 10]),
        ("fc.bias".into(), vec![2], vec![0.25; 2]),
    ]
}

/// The safetensors bytes of `entries`, as `safetensors.torch.save_file` writes them.
fn state_dict(entries: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = entries
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = entries.iter().zip(&bytes).map(|((name, shape, _), data)| {
        let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("a valid tensor");
        (name.clone(), view)
    });
    safetensors::serialize(views, None).expect("serialises")
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// `bytes` written to a file of its own, named after the test.
fn file(test: &str, bytes: &[u8]) -> TempFile {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-prefix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}.safetensors"));
    std::fs::write(&path, bytes).unwrap();
    TempFile(path)
}

/// A model with an encoder and a decoder LSTM and a dense layer, no key without a prefix.
fn two_lstms() -> Vec<u8> {
    let mut entries = lstm_entries("encoder.lstm.", &encoder());
    entries.extend(lstm_entries("decoder.lstm.", &decoder()));
    entries.extend(unrelated_entries());
    state_dict(&entries)
}

#[test]
fn a_sole_prefixed_lstm_loads_without_naming_its_prefix() {
    let mut entries = lstm_entries("encoder.lstm.", &encoder());
    entries.extend(unrelated_entries());
    let path = file("sole", &state_dict(&entries));
    assert_eq!(LstmWeights::<f32>::load(&path).unwrap(), encoder());
}

#[test]
fn each_of_two_lstms_loads_by_its_prefix() {
    let path = file("by_prefix", &two_lstms());
    assert_eq!(
        LstmWeights::<f32>::load_prefixed(&path, "encoder.lstm.").unwrap(),
        encoder()
    );
    assert_eq!(
        LstmWeights::<f32>::load_prefixed(&path, "decoder.lstm.").unwrap(),
        decoder()
    );
}

#[test]
fn a_prefix_without_its_trailing_dot_names_the_same_module() {
    let path = file("no_dot", &two_lstms());
    assert_eq!(
        LstmWeights::<f32>::load_prefixed(&path, "decoder.lstm").unwrap(),
        decoder()
    );
}

#[test]
fn two_prefixed_lstms_are_ambiguous_and_the_error_lists_both_prefixes() {
    let path = file("ambiguous", &two_lstms());
    let err = LstmWeights::<f32>::load(&path).unwrap_err();
    let message = err.to_string();
    match err {
        Error::AmbiguousPrefix {
            path: Some(at),
            prefixes,
        } => {
            assert_eq!(at, path.0);
            assert_eq!(prefixes, ["decoder.lstm.", "encoder.lstm."]);
        }
        other => panic!("expected AmbiguousPrefix naming the file, got {other:?}"),
    }
    for prefix in ["decoder.lstm.", "encoder.lstm.", "ambiguous.safetensors"] {
        assert!(message.contains(prefix), "{message:?} lacks {prefix:?}");
    }
}

#[test]
fn bytes_in_memory_are_ambiguous_without_a_path_and_load_by_prefix() {
    let bytes = two_lstms();
    match LstmWeights::<f32>::from_safetensors_bytes(&bytes) {
        Err(Error::AmbiguousPrefix {
            path: None,
            prefixes,
        }) => assert_eq!(prefixes, ["decoder.lstm.", "encoder.lstm."]),
        other => panic!("expected AmbiguousPrefix without a path, got {other:?}"),
    }
    assert_eq!(
        LstmWeights::<f32>::from_safetensors_bytes_prefixed(&bytes, "encoder.lstm").unwrap(),
        encoder()
    );
}

#[test]
fn unprefixed_lstm_keys_are_loaded_before_any_prefixed_ones() {
    let mut entries = lstm_entries("", &encoder());
    entries.extend(lstm_entries("decoder.lstm.", &decoder()));
    let path = file("unprefixed_first", &state_dict(&entries));
    assert_eq!(LstmWeights::<f32>::load(&path).unwrap(), encoder());
}

#[test]
fn a_file_without_any_lstm_names_the_missing_first_weight() {
    let path = file("no_lstm", &state_dict(&unrelated_entries()));
    match LstmWeights::<f32>::load(&path) {
        Err(Error::MissingTensor { tensor }) => assert_eq!(tensor, "weight_ih_l0"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn a_missing_tensor_under_a_prefix_is_named_with_its_prefix() {
    let mut entries = lstm_entries("encoder.lstm.", &encoder());
    entries.retain(|(name, _, _)| name != "encoder.lstm.bias_hh_l0");
    let path = file("missing", &state_dict(&entries));
    for result in [
        LstmWeights::<f32>::load(&path),
        LstmWeights::<f32>::load_prefixed(&path, "encoder.lstm"),
    ] {
        match result {
            Err(Error::MissingTensor { tensor }) => assert_eq!(tensor, "encoder.lstm.bias_hh_l0"),
            other => panic!("expected MissingTensor, got {other:?}"),
        }
    }
}

#[test]
fn a_prefix_that_holds_no_lstm_names_the_key_it_looked_for() {
    let path = file("wrong_prefix", &two_lstms());
    match LstmWeights::<f32>::load_prefixed(&path, "fc") {
        Err(Error::MissingTensor { tensor }) => assert_eq!(tensor, "fc.weight_ih_l0"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn the_lstm_prefixes_of_a_file_are_listed_sorted() {
    let path = file("listed", &two_lstms());
    assert_eq!(
        lstm_prefixes(&path).unwrap(),
        ["decoder.lstm.", "encoder.lstm."]
    );
}

#[test]
fn the_listing_names_unprefixed_keys_by_the_empty_prefix() {
    let mut entries = lstm_entries("", &encoder());
    entries.extend(lstm_entries("decoder.lstm.", &decoder()));
    assert_eq!(
        lstm_prefixes_in_bytes(&state_dict(&entries)).unwrap(),
        ["", "decoder.lstm."]
    );
}

#[test]
fn a_key_that_only_ends_in_the_first_weight_name_is_no_prefix() {
    // `lstmweight_ih_l0` has no module path before the name (`lstm.` would be one).
    let mut entries = lstm_entries("encoder.", &encoder());
    entries.push(("lstmweight_ih_l0".into(), vec![20, 3], vec![0.0; 60]));
    assert_eq!(
        lstm_prefixes_in_bytes(&state_dict(&entries)).unwrap(),
        ["encoder."]
    );
}

#[test]
fn a_listing_of_a_missing_file_is_an_io_error_naming_it() {
    match lstm_prefixes("/nonexistent/model.safetensors") {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("model.safetensors")),
        other => panic!("expected Io, got {other:?}"),
    }
}
