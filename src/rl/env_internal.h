/* Private: how an environment plugs into cx_env (src/rl/env.c). Each
 * environment is one cx_env_class (a table of functions) defined in its own
 * file and listed in the registry of env.c. */
#ifndef CX_ENV_INTERNAL_H
#define CX_ENV_INTERNAL_H
#include <cortex.h>
#include <cortex/env.h>

typedef struct cx_env_class {
    const char *id;          /* canonical name, "CartPole-v1" */
    const char *alias;       /* short lower-case name, "cartpole" */
    const char *about;       /* one line for cx_env_list */
    size_t cfg_size;         /* bytes of the settings (POD, e->cfg), set once by configure */
    size_t state_size;       /* bytes of the dynamic state (POD, e->state); snapshots copy it */
    int max_episode_steps;   /* the default time limit (0: none) */
    int state_dim;           /* values of get_state / set_state */
    /* Apply one setting key=value (both strings) to e->cfg; return
     * CX_ERR_INVALID with cx_set_error for an unknown key or bad value.
     * NULL: the environment has no settings of its own. Called before setup;
     * e->cfg is zeroed and then set_defaults (if any) runs first. */
    void (*set_defaults)(cx_env *e);
    cx_status (*configure)(cx_env *e, const char *key, const char *value);
    /* Fill the spaces (envi_box / envi_discrete below) from e->cfg; may set
     * e->max_steps when the default depends on the settings and
     * !e->max_steps_given (FrozenLake: 100 for 4x4, 200 for 8x8). */
    cx_status (*setup)(cx_env *e);
    /* Sample an initial state from e->rng (envi_rng) and write the observation. */
    void (*reset)(cx_env *e, float *obs);
    /* One step: action a (discrete) or box (already clipped to the bounds);
     * write the observation, set *terminated, return the reward. */
    float (*step)(cx_env *e, int a, const float *box, float *obs, bool *terminated);
    /* The observation of the current state (after set_state). */
    void (*observe)(const cx_env *e, float *obs);
    void (*get_state)(const cx_env *e, double *s);
    void (*set_state)(cx_env *e, const double *s);
    /* Tabular model (NULL: none). */
    int (*model)(const cx_env *e, int s, int a, cx_transition *out, int max);
    /* Render size for the current settings, and drawing into rgb [h][w][3]. */
    void (*render_size)(const cx_env *e, int *w, int *h);
    void (*render)(const cx_env *e, uint8_t *rgb, int w, int h);
} cx_env_class;

/* What every environment carries besides its own state (snapshotted). */
typedef struct envi_common {
    cx_rng rng;
    int steps;
    int started;  /* reset at least once */
    int done;     /* the episode ended: step needs a reset first */
    double ep_return;
    int64_t episodes, total_steps;
    double last_return;
    int last_length;
} envi_common;

struct cx_env {
    const cx_env_class *cls;
    char *spec;
    int max_steps;
    int max_steps_given;       /* the spec set max_steps (setup may then not change it) */
    int stack;                 /* frames stacked (1: none) */
    cx_space base_obs;         /* the environment's own observation space */
    cx_space obs_space;        /* what the agent sees (stacked) */
    cx_space act_space;
    float *bounds[6];          /* owned: base obs low/high, obs low/high, act low/high */
    envi_common c;
    void *cfg;
    void *state;
    float *stackbuf;           /* [stack * base_obs.n], part of the snapshot */
    float *tmp_obs;            /* [base_obs.n] */
    uint8_t *frame;            /* render buffer */
    int frame_w, frame_h;
};

/* Helpers for classes. */
void envi_discrete(cx_space *s, int n);
/* A box space of shape (ndim values); low/high: n values each, or NULL for
 * the same bound everywhere given by lo/hi. Bounds are owned by e. */
void envi_box(cx_env *e, cx_space *s, int ndim, const int *shape, const float *low, const float *high, float lo,
              float hi);
static inline cx_rng *envi_rng(cx_env *e) { return &e->c.rng; }
/* Parse helpers for configure: strict (whole string, range). */
cx_status envi_parse_int(const char *key, const char *v, int lo, int hi, int *out);
cx_status envi_parse_double(const char *key, const char *v, double lo, double hi, double *out);
cx_status envi_parse_bool(const char *key, const char *v, int *out);
/* Drawing helpers on an RGB buffer. */
void envi_fill(uint8_t *rgb, int w, int h, uint8_t r, uint8_t g, uint8_t b);
void envi_rect(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1, const uint8_t col[3]);
void envi_disc(uint8_t *rgb, int w, int h, double cx, double cy, double rad, const uint8_t col[3]);
/* A thick line segment (capsule) from (x0,y0) to (x1,y1) of half-width r. */
void envi_line(uint8_t *rgb, int w, int h, double x0, double y0, double x1, double y1, double r,
               const uint8_t col[3]);

/* The registry (env.c). */
extern const cx_env_class cx_env_cartpole;
extern const cx_env_class cx_env_acrobot;
extern const cx_env_class cx_env_mountaincar;
extern const cx_env_class cx_env_pendulum;
extern const cx_env_class cx_env_frozenlake;
extern const cx_env_class cx_env_catch;

#endif
