package org.fhirlab.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.server.RestfulServer;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchClientAutoConfiguration;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Entry point of the fhirlab HAPI FHIR server: HAPI FHIR JPA (R4) inside Spring Boot.
 *
 * <p>HAPI's JPA server is a set of plain Spring {@code @Configuration} classes; Spring Boot only hosts
 * them (embedded Tomcat, DataSource from {@code spring.datasource.*}, actuator). The HAPI
 * configurations imported here expect a few beans from the application, which the other classes in
 * this package supply: {@link PersistenceConfig} (entity manager factory, transaction manager),
 * {@link StorageConfig} (storage/partition/subscription settings, binary storage) and
 * {@link FhirServerConfig} (the {@link RestfulServer} with its providers).
 */
@SpringBootApplication(
		exclude = {
			// HAPI runs its own Quartz scheduler (HapiSchedulerServiceImpl); Boot's would be a second one.
			QuartzAutoConfiguration.class,
			// The Elasticsearch client is on the classpath (a HAPI dependency for Hibernate Search) but
			// unused: without these exclusions Boot would create a client for localhost:9200 and add
			// an Elasticsearch check to /actuator/health, which would then report DOWN.
			ElasticsearchRestClientAutoConfiguration.class,
			ElasticsearchClientAutoConfiguration.class,
			// Thymeleaf is on the classpath only for HAPI's narrative generator; there are no web pages.
			ThymeleafAutoConfiguration.class
		})
@EnableConfigurationProperties(HapiProperties.class)
@Import({
	// The R4 JPA server: FhirContext, generated DAOs and resource providers, search, terminology...
	JpaR4Config.class,
	// Beans that JpaConfig leaves to the application and HAPI supplies a default for: full-text
	// search service (a no-op while Hibernate Search is off), stale-search cleanup, database-backed
	// paging, resource-supported service, resource counts cache, full-text sort helper.
	HapiJpaConfig.class,
	// ThreadPoolFactory: required by the transaction processor; not imported by JpaConfig.
	ThreadPoolFactoryConfig.class,
	// Batch2 job framework on the JPA tables (job persistence, maintenance, work-chunk processing).
	JpaBatch2Config.class,
	// In-memory message broker (LinkedBlockingBrokerClient). Despite the name this is not about
	// Subscriptions being on: Batch2 hands its work chunks to workers through this broker.
	SubscriptionChannelConfig.class,
	// Batch2 job definitions: bulk export (BulkExportAppCtx), bulk import, reindex, $delete-expunge...
	Batch2JobsConfig.class
})
public class Application {

	/**
	 * Spring settings the HAPI wiring itself needs. They are defaults (lowest precedence), so a
	 * settings file may still override them; they live here rather than in application.yaml because
	 * they are not choices: without them the server does not start or behaves wrongly.
	 */
	static Map<String, Object> wiringDefaults() {
		Map<String, Object> d = new LinkedHashMap<>();
		// HAPI's configuration classes reference each other in cycles (e.g. DAOs <-> search services).
		d.put("spring.main.allow-circular-references", "true");
		// HAPI manages its schema (Hibernate hbm2ddl "update", as in the image); never run Flyway.
		d.put("spring.flyway.enabled", "false");
		// Not a web MVC app: no entity manager bound to request threads.
		d.put("spring.jpa.open-in-view", "false");
		d.put("spring.main.banner-mode", "off");
		return d;
	}

	public static void main(String[] args) {
		SpringApplication app = new SpringApplication(Application.class);
		app.setDefaultProperties(wiringDefaults());
		app.run(args);
	}

	/** Serves the FHIR API at {@code /fhir/*}; Spring MVC keeps {@code /} (actuator lives there). */
	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServletRegistration(RestfulServer theRestfulServer) {
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(theRestfulServer, "/fhir/*");
		registration.setName("fhir");
		// Initialise (register providers, build the CapabilityStatement model) at startup, not on
		// the first request, so that a wiring error stops the process instead of failing a request.
		registration.setLoadOnStartup(1);
		return registration;
	}
}
