/* libFuzzer target: config.json bytes -> JSON -> g4c_config. Parsing must never crash, leak or accept a config
 * whose per-layer table is inconsistent. */
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *root = NULL;
    g4c_err err = {0};
    if (g4c_json_parse(&root, (const char *)data, size, "fuzz", &err) != G4C_OK) return 0;
    g4c_config cfg;
    if (g4c_config_parse(&cfg, root, "fuzz", &err) == G4C_OK) {
        for (int i = 0; i < cfg.n_layer; i++) {
            const g4c_layer_cfg *l = &cfg.layers[i];
            if (l->kv_source < 0 || l->kv_source >= cfg.n_layer || cfg.layers[l->kv_source].kv_slot < 0 ||
                l->head_dim <= 0 || l->n_kv_head <= 0 || cfg.n_head % l->n_kv_head)
                __builtin_trap();
        }
        g4c_config_free(&cfg);
    } else if (!err.msg[0]) {
        __builtin_trap();
    }
    cJSON_Delete(root);
    return 0;
}
