#!/bin/bash
# ctest random_release_mini: make_random_release at the shared mini fixtures' widths writes files that
# every family's strict loader accepts, in a bundle that embeds every modality (Base, then Large).
#   bench/random_release_check.sh MAKE_RANDOM_RELEASE OMNIBIND SHARED_DIR
set -eu
gen=$1 omnibind=$2 shared=$3
F=$shared/fixtures
if [ ! -d "$F/wavcaps_mini" ]; then echo "SKIPPED: $F not found"; exit 77; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# uni3d_mini/g_mini with embed_dim 48: the Uni3D spaces' image/text side is EVA-CLIP's (eva02_clip_mini: 48-d).
cat > "$dir/uni3d.json" <<'JSON'
{"pc_model": "eva_giant_patch14_560", "pc_feat_dim": 32, "embed_dim": 48, "num_group": 64, "group_size": 16,
 "pc_encoder_dim": 64, "npoints": 10000, "timm_overrides": {"embed_dim": 32, "depth": 2, "num_heads": 4}}
JSON
common=(--unified-dim 64 --heads-hidden 32
        --config "wavcaps=$F/wavcaps_mini/config.json" --vocab "wavcaps=$F/wavcaps_mini/vocab_mini.txt"
        --config "eva_clip=$F/eva02_clip_mini/config.json" --config "uni3d=$dir/uni3d.json"
        --config "imagebind=$F/imagebind_mini/config.json")
large=(--config "clap_fusion=$F/clap_mini/fusion/config.json" --config "clap_base=$F/clap_mini/base/config.json"
       --config "open_clip=$F/dfn_clip_mini/config.json" --config "siglip_large16=$F/siglip_mini/large16/config.json"
       --config "siglip_so400m14=$F/siglip_mini/so400m14/config.json"
       --vocab "roberta_vocab=$F/clap_mini/base/roberta_vocab.json" --vocab "roberta_merges=$F/clap_mini/base/roberta_merges.txt"
       --vocab "spiece=$F/siglip_mini/large16/spiece.model")
for preset in base large; do
  args=("${common[@]}")
  [ "$preset" = large ] && args+=("${large[@]}")
  "$gen" --preset "$preset" --out "$dir/$preset" --seed 3 "${args[@]}"
  test -s "$dir/$preset/bundle.json"
  for m in audio image point text; do
    case $m in
      audio) in=("$F/wavcaps_mini/inputs/"*.wav) ;;
      image) in=("$F/imagebind_mini/inputs/dog_image.jpg" "$F/imagebind_mini/inputs/car_image.jpg") ;;
      point) in=("$F/uni3d_mini/inputs/BBQ.npy" "$F/uni3d_mini/inputs/chair_0890.pcd") ;;
      text) in=(--text "a dog barking" --text "a bird") ;;
    esac
    [ $m = text ] || in=("${in[@]:0:2}")
    "$omnibind" embed --model "$dir/$preset" --modality $m "${in[@]}" --out "$dir/$preset-$m.safetensors"
    test -s "$dir/$preset-$m.safetensors"
  done
  rm -rf "${dir:?}/$preset"
done
echo "random_release_mini: OK"
