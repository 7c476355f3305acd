#!/bin/sh
# Copies the installed transformers Gemma 4 sources (the test oracle's exact revision) to $OUT for reading.
set -e
d=$(python3 -c "import transformers,os;print(os.path.dirname(transformers.__file__))")
python3 -c "import transformers,torch;print('transformers',transformers.__version__,'torch',torch.__version__)"
cp $d/models/gemma4/configuration_gemma4.py $d/models/gemma4/modeling_gemma4.py $d/masking_utils.py $d/modeling_rope_utils.py $OUT/
cp $d/models/gemma4/image_processing_gemma4.py $d/models/gemma4/processing_gemma4.py $OUT/ 2>/dev/null || true
ls $d/models/gemma4/
