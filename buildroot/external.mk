include $(sort $(wildcard $(BR2_EXTERNAL_INTERCOMD_PATH)/package/*/*.mk))
